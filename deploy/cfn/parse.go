package cfn

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a template that cannot be read or resolved. Code is
// CloudFormation's ValidationError; Where names the resource and property
// (or the section) so that the message is one line a user can act on.
type Error struct {
	Code  string
	Where string
	Msg   string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return e.Code + ": " + e.Msg
	}
	return e.Code + ": " + e.Where + ": " + e.Msg
}

// ErrCodeValidation is the code of every Error.
const ErrCodeValidation = "ValidationError"

func errorf(where, format string, args ...any) *Error {
	return &Error{Code: ErrCodeValidation, Where: where, Msg: fmt.Sprintf(format, args...)}
}

// Limits on what Parse expands, so that a small hostile document (aliases
// of aliases) cannot take unbounded memory or stack.
const (
	maxDepth      = 100
	maxNodes      = 1 << 20
	maxAliasNodes = 1 << 14 // nodes reached through aliases
)

// Template is a parsed template. Values are string (every scalar that is
// not a boolean or null), bool, nil, []any and map[string]any; an intrinsic
// is a map with one key (Ref, Condition or Fn::NAME), whatever form the
// source used.
type Template struct {
	Parameters []Parameter
	Mappings   map[string]any
	Conditions map[string]any
	Resources  []Resource
	// Outputs are read, not evaluated.
	Outputs map[string]any
}

// Parameter is one entry of Parameters.
type Parameter struct {
	Name          string
	Type          string
	Default       *string
	AllowedValues []string
}

// Resource is one entry of Resources, in template order.
type Resource struct {
	LogicalID  string
	Type       string
	Condition  string
	Properties map[string]any
}

// functions are the intrinsic functions CloudFormation defines; evaluable
// says whether ksp evaluates them.
var functions = map[string]bool{
	"Fn::GetAtt": true, "Fn::Sub": true, "Fn::Join": true, "Fn::Select": true, "Fn::Split": true,
	"Fn::If": true, "Fn::Equals": true, "Fn::Not": true, "Fn::And": true, "Fn::Or": true,
	"Fn::FindInMap": true, "Fn::Base64": true,
	"Fn::GetAZs": false, "Fn::ImportValue": false, "Fn::Cidr": false, "Fn::Length": false,
	"Fn::ToJsonString": false, "Fn::Transform": false,
}

// Parse reads a YAML or JSON template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errorf("template", "not valid YAML or JSON: %s", firstLine(err.Error()))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errorf("template", "empty document")
	}
	c := converter{}
	root, err := c.value(doc.Content[0], "template", 0)
	if err != nil {
		return nil, err
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, errorf("template", "the template is not a mapping")
	}
	t := &Template{}
	if t.Mappings, err = section(top, "Mappings"); err != nil {
		return nil, err
	}
	if t.Conditions, err = section(top, "Conditions"); err != nil {
		return nil, err
	}
	if t.Outputs, err = section(top, "Outputs"); err != nil {
		return nil, err
	}
	params, err := section(top, "Parameters")
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(params) {
		p, err := parseParameter(name, params[name])
		if err != nil {
			return nil, err
		}
		t.Parameters = append(t.Parameters, p)
	}
	resources, err := section(top, "Resources")
	if err != nil {
		return nil, err
	}
	if len(resources) == 0 {
		return nil, errorf("Resources", "the template declares no resources")
	}
	order, ok := c.order["Resources"]
	if !ok || len(order) != len(resources) { // Resources written as an alias
		order = sortedKeys(resources)
	}
	for _, id := range order {
		r, err := parseResource(id, resources[id])
		if err != nil {
			return nil, err
		}
		t.Resources = append(t.Resources, r)
	}
	return t, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func section(top map[string]any, name string) (map[string]any, error) {
	v, ok := top[name]
	if !ok || v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(name, "not a mapping")
	}
	return m, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseParameter(name string, v any) (Parameter, error) {
	where := "parameter " + name
	m, ok := v.(map[string]any)
	if !ok {
		return Parameter{}, errorf(where, "not a mapping")
	}
	p := Parameter{Name: name, Type: "String"}
	if typ, ok := m["Type"].(string); ok {
		p.Type = typ
	} else if m["Type"] != nil {
		return Parameter{}, errorf(where, "Type is not a string")
	}
	if d, ok := m["Default"]; ok {
		s, err := scalarString(d)
		if err != nil {
			return Parameter{}, errorf(where, "Default: %v", err)
		}
		p.Default = &s
	}
	if av, ok := m["AllowedValues"]; ok {
		list, ok := av.([]any)
		if !ok {
			return Parameter{}, errorf(where, "AllowedValues is not a list")
		}
		for _, a := range list {
			s, err := scalarString(a)
			if err != nil {
				return Parameter{}, errorf(where, "AllowedValues: %v", err)
			}
			p.AllowedValues = append(p.AllowedValues, s)
		}
	}
	return p, nil
}

func parseResource(id string, v any) (Resource, error) {
	where := "resource " + id
	m, ok := v.(map[string]any)
	if !ok {
		return Resource{}, errorf(where, "not a mapping")
	}
	typ, ok := m["Type"].(string)
	if !ok || typ == "" {
		return Resource{}, errorf(where, "Type is missing or not a string")
	}
	r := Resource{LogicalID: id, Type: typ}
	if c, ok := m["Condition"]; ok {
		if r.Condition, ok = c.(string); !ok {
			return Resource{}, errorf(where, "Condition is not a string")
		}
	}
	switch p := m["Properties"].(type) {
	case nil:
		r.Properties = map[string]any{}
	case map[string]any:
		r.Properties = p
	default:
		return Resource{}, errorf(where, "Properties is not a mapping")
	}
	return r, nil
}

// scalarString is a parameter's Default or allowed value as a string.
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case []any: // CommaDelimitedList defaults are often written as lists
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", errors.New("not a string")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("not a scalar")
}

// converter turns yaml nodes into values, expanding short-form tags into
// their long form and counting what it builds.
type converter struct {
	nodes, aliasNodes, inAlias int
	// order keeps the source order of the top-level sections' keys
	// (Resources are created in the order they are written).
	order map[string][]string
}

func (c *converter) value(n *yaml.Node, where string, depth int) (any, error) {
	c.nodes++
	if c.inAlias > 0 {
		c.aliasNodes++
	}
	if depth > maxDepth || c.nodes > maxNodes || c.aliasNodes > maxAliasNodes {
		return nil, errorf(where, "the template nests or repeats too deeply (more than %d levels, %d nodes or %d through aliases)", maxDepth, maxNodes, maxAliasNodes)
	}
	if n.Kind == yaml.AliasNode {
		c.inAlias++
		defer func() { c.inAlias-- }()
		return c.value(n.Alias, where, depth+1)
	}
	if n.Tag != "" && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return c.shortForm(n, where, depth)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, nil
			}
		}
		return n.Value, nil
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, fmt.Sprintf("%s[%d]", where, i), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.MappingNode:
		return c.mapping(n, where, depth)
	}
	return nil, errorf(where, "unexpected YAML node at line %d", n.Line)
}

func (c *converter) mapping(n *yaml.Node, where string, depth int) (any, error) {
	m := make(map[string]any, len(n.Content)/2)
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Kind == yaml.AliasNode {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			return nil, errorf(where, "a mapping key at line %d is not a string", n.Content[i].Line)
		}
		if kn.Value == "<<" {
			return nil, errorf(where, "YAML merge keys (<<) at line %d are not part of CloudFormation templates", kn.Line)
		}
		k := kn.Value
		if _, dup := m[k]; dup {
			return nil, errorf(where, "duplicate key %q at line %d", k, kn.Line)
		}
		v, err := c.value(n.Content[i+1], join(where, k), depth+1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		keys = append(keys, k)
	}
	// The order of a top-level section's keys (a root under a short-form
	// tag is a depth-1 mapping too, but no section).
	if section, ok := strings.CutPrefix(where, "template."); ok && depth == 1 {
		if c.order == nil {
			c.order = map[string][]string{}
		}
		c.order[section] = keys
	}
	for k := range m {
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			if err := checkIntrinsic(k, m, where); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func checkIntrinsic(k string, m map[string]any, where string) error {
	if k != "Ref" {
		if _, known := functions[k]; !known {
			return errorf(where, "unknown intrinsic function %s", k)
		}
	}
	if len(m) != 1 {
		return errorf(where, "%s must be the only key of its mapping", k)
	}
	return nil
}

func (c *converter) shortForm(n *yaml.Node, where string, depth int) (any, error) {
	name := n.Tag[1:]
	plain := *n
	plain.Tag = ""
	switch n.Kind {
	case yaml.ScalarNode:
		plain.Tag = "!!str"
	case yaml.SequenceNode:
		plain.Tag = "!!seq"
	case yaml.MappingNode:
		plain.Tag = "!!map"
	}
	arg, err := c.value(&plain, where, depth+1)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref", "Condition":
		if _, ok := arg.(string); !ok {
			return nil, errorf(where, "!%s at line %d takes a name", name, n.Line)
		}
		return map[string]any{name: arg}, nil
	case "GetAtt":
		if s, ok := arg.(string); ok {
			res, attr, ok := strings.Cut(s, ".")
			if !ok {
				return nil, errorf(where, "!GetAtt %q at line %d: want LogicalId.Attribute", s, n.Line)
			}
			arg = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": arg}, nil
	}
	fn := "Fn::" + name
	if _, known := functions[fn]; !known {
		return nil, errorf(where, "unknown intrinsic function !%s at line %d", name, n.Line)
	}
	return map[string]any{fn: arg}, nil
}

func join(where, key string) string { return where + "." + key }
