package cfn

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Env is what a template is resolved against.
type Env struct {
	Region    string // AWS::Region and the ARNs (default us-east-1)
	Account   string // AWS::AccountId (default 000000000000)
	StackName string // AWS::StackName (default "ksp")
	// Parameters are values given for the template's parameters
	// (--parameter K=V); the others take their Default.
	Parameters map[string]string
}

// noValue is AWS::NoValue: the property it stands for is removed.
type noValue struct{}

// evaluator resolves intrinsics within one template.
type evaluator struct {
	t      *Template
	env    Env
	params map[string]string
	conds  map[string]bool
	// inProgress detects a condition that refers to itself.
	inProgress map[string]bool
	// resolved maps a created resource's logical ID to its Ref value and
	// attributes (filled as streams are named).
	refs  map[string]string
	attrs map[string]map[string]string
	types map[string]string
}

func newEvaluator(t *Template, env Env) (*evaluator, error) {
	if env.Region == "" {
		env.Region = "us-east-1"
	}
	if env.Account == "" {
		env.Account = "000000000000"
	}
	if env.StackName == "" {
		env.StackName = "ksp"
	}
	e := &evaluator{t: t, env: env, params: map[string]string{}, conds: map[string]bool{}, inProgress: map[string]bool{},
		refs: map[string]string{}, attrs: map[string]map[string]string{}, types: map[string]string{}}
	declared := map[string]bool{}
	for _, p := range t.Parameters {
		declared[p.Name] = true
		where := "parameter " + p.Name
		v, given := env.Parameters[p.Name]
		switch {
		case given:
		case p.Default != nil:
			v = *p.Default
		default:
			return nil, errorf(where, "no value given (--parameter %s=VALUE) and no Default", p.Name)
		}
		if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
			return nil, errorf(where, "value %q is not one of AllowedValues %v", v, p.AllowedValues)
		}
		if p.Type == "Number" {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return nil, errorf(where, "value %q is not a Number", v)
			}
		}
		e.params[p.Name] = v
	}
	for _, k := range sortedKeys(toAny(env.Parameters)) {
		if !declared[k] {
			return nil, errorf("parameter "+k, "the template declares no such parameter")
		}
	}
	for _, r := range t.Resources {
		e.types[r.LogicalID] = r.Type
	}
	return e, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// condition evaluates a named condition once.
func (e *evaluator) condition(name, where string) (bool, error) {
	if v, ok := e.conds[name]; ok {
		return v, nil
	}
	def, ok := e.t.Conditions[name]
	if !ok {
		return false, errorf(where, "condition %q is not declared in Conditions", name)
	}
	if e.inProgress[name] {
		return false, errorf("condition "+name, "refers to itself")
	}
	e.inProgress[name] = true
	defer delete(e.inProgress, name)
	v, err := e.boolean(def, "condition "+name)
	if err != nil {
		return false, err
	}
	e.conds[name] = v
	return v, nil
}

func (e *evaluator) boolean(v any, where string) (bool, error) {
	r, err := e.eval(v, where)
	if err != nil {
		return false, err
	}
	switch r := r.(type) {
	case bool:
		return r, nil
	case string:
		if b, err := strconv.ParseBool(r); err == nil {
			return b, nil
		}
	}
	return false, errorf(where, "%s is not a condition (true or false)", show(r))
}

// eval resolves every intrinsic within v.
func (e *evaluator) eval(v any, where string) (any, error) {
	switch v := v.(type) {
	case []any:
		out := make([]any, 0, len(v))
		for i, x := range v {
			r, err := e.eval(x, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return e.function(k, arg, where)
				}
			}
		}
		out := make(map[string]any, len(v))
		for _, k := range sortedKeys(v) {
			r, err := e.eval(v[k], join(where, k))
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) function(name string, arg any, where string) (any, error) {
	switch name {
	case "Ref":
		s, ok := arg.(string)
		if !ok {
			return nil, errorf(where, "Ref takes a name, not %s", show(arg))
		}
		return e.ref(s, where)
	case "Condition":
		s, ok := arg.(string)
		if !ok {
			return nil, errorf(where, "Condition takes a name, not %s", show(arg))
		}
		return e.condition(s, where)
	case "Fn::GetAtt":
		return e.getAtt(arg, where)
	case "Fn::Sub":
		return e.sub(arg, where)
	case "Fn::If":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return nil, errorf(where, "Fn::If takes [condition, value if true, value if false]")
		}
		name, ok := list[0].(string)
		if !ok {
			return nil, errorf(where, "Fn::If: the condition must be a name")
		}
		c, err := e.condition(name, where)
		if err != nil {
			return nil, err
		}
		if c {
			return e.eval(list[1], where)
		}
		return e.eval(list[2], where)
	case "Fn::Equals":
		list, err := e.list(arg, where, name, 2)
		if err != nil {
			return nil, err
		}
		a, b := fmt.Sprint(list[0]), fmt.Sprint(list[1])
		return a == b, nil
	case "Fn::Not":
		list, err := e.rawList(arg, where, name, 1, 1)
		if err != nil {
			return nil, err
		}
		b, err := e.boolean(list[0], where)
		return !b, err
	case "Fn::And", "Fn::Or":
		list, err := e.rawList(arg, where, name, 2, 10)
		if err != nil {
			return nil, err
		}
		and := name == "Fn::And"
		for _, c := range list {
			b, err := e.boolean(c, where)
			if err != nil {
				return nil, err
			}
			if b != and {
				return !and, nil
			}
		}
		return and, nil
	case "Fn::Join":
		list, err := e.list(arg, where, name, 2)
		if err != nil {
			return nil, err
		}
		delim, ok := list[0].(string)
		parts, ok2 := list[1].([]any)
		if !ok || !ok2 {
			return nil, errorf(where, "Fn::Join takes [delimiter, [values]]")
		}
		strs := make([]string, len(parts))
		for i, p := range parts {
			if strs[i], ok = scalar(p); !ok {
				return nil, errorf(where, "Fn::Join: %s is not a string", show(p))
			}
		}
		return strings.Join(strs, delim), nil
	case "Fn::Select":
		list, err := e.list(arg, where, name, 2)
		if err != nil {
			return nil, err
		}
		is, _ := scalar(list[0])
		i, err := strconv.Atoi(is)
		items, ok := list[1].([]any)
		if err != nil || !ok || i < 0 || i >= len(items) {
			return nil, errorf(where, "Fn::Select: index %s is not within the list of %d", show(list[0]), len(items))
		}
		return items[i], nil
	case "Fn::Split":
		list, err := e.list(arg, where, name, 2)
		if err != nil {
			return nil, err
		}
		delim, ok := list[0].(string)
		s, ok2 := list[1].(string)
		if !ok || !ok2 || delim == "" {
			return nil, errorf(where, "Fn::Split takes [delimiter, string]")
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		list, err := e.list(arg, where, name, 3)
		if err != nil {
			return nil, err
		}
		var cur any = e.t.Mappings
		for _, k := range list {
			ks, ok := scalar(k)
			m, ok2 := cur.(map[string]any)
			if !ok || !ok2 {
				return nil, errorf(where, "Fn::FindInMap: %s is not a key", show(k))
			}
			if cur, ok = m[ks]; !ok {
				return nil, errorf(where, "Fn::FindInMap: no key %q in Mappings", ks)
			}
		}
		return cur, nil
	case "Fn::Base64":
		v, err := e.eval(arg, where)
		if err != nil {
			return nil, err
		}
		s, ok := scalar(v)
		if !ok {
			return nil, errorf(where, "Fn::Base64: %s is not a string", show(v))
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	}
	if evaluable, known := functions[name]; known && !evaluable {
		return nil, errorf(where, "%s has a value only AWS knows; ksp cannot evaluate it", name)
	}
	return nil, errorf(where, "unknown intrinsic function %s", name)
}

// rawList checks arg is a list of min..max entries without evaluating them.
func (e *evaluator) rawList(arg any, where, fn string, min, max int) ([]any, error) {
	list, ok := arg.([]any)
	if !ok || len(list) < min || len(list) > max {
		return nil, errorf(where, "%s takes a list of %d to %d values, not %s", fn, min, max, show(arg))
	}
	return list, nil
}

// list evaluates arg, a list of exactly n entries.
func (e *evaluator) list(arg any, where, fn string, n int) ([]any, error) {
	if _, err := e.rawList(arg, where, fn, n, n); err != nil {
		return nil, err
	}
	v, err := e.eval(arg, where)
	if err != nil {
		return nil, err
	}
	list := v.([]any)
	if len(list) != n {
		return nil, errorf(where, "%s takes %d values", fn, n)
	}
	return list, nil
}

func (e *evaluator) ref(name, where string) (any, error) {
	switch name {
	case "AWS::Region":
		return e.env.Region, nil
	case "AWS::AccountId":
		return e.env.Account, nil
	case "AWS::StackName":
		return e.env.StackName, nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/ksp", e.env.Region, e.env.Account, e.env.StackName), nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::NotificationARNs":
		return []any{}, nil
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	if v, ok := e.refs[name]; ok {
		return v, nil
	}
	switch e.types[name] {
	case "":
		return nil, errorf(where, "Ref %s: no such parameter or resource", name)
	case typeConsumer:
		return nil, errorf(where, "Ref %s: a consumer's ARN is known only once it is registered", name)
	case typeStream:
		return nil, errorf(where, "Ref %s: the stream's name depends on itself", name)
	}
	return name, nil
}

func (e *evaluator) getAtt(arg any, where string) (any, error) {
	v, err := e.eval(arg, where)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok || len(list) != 2 {
		return nil, errorf(where, "Fn::GetAtt takes [LogicalId, Attribute]")
	}
	res, ok := list[0].(string)
	attr, ok2 := list[1].(string)
	if !ok || !ok2 {
		return nil, errorf(where, "Fn::GetAtt takes [LogicalId, Attribute]")
	}
	return e.attribute(res, attr, where)
}

func (e *evaluator) attribute(res, attr, where string) (string, error) {
	if a, ok := e.attrs[res]; ok {
		if v, ok := a[attr]; ok {
			return v, nil
		}
		return "", errorf(where, "Fn::GetAtt %s.%s: %s has no attribute %s", res, attr, e.types[res], attr)
	}
	switch e.types[res] {
	case "":
		return "", errorf(where, "Fn::GetAtt %s.%s: no such resource", res, attr)
	case typeConsumer:
		return "", errorf(where, "Fn::GetAtt %s.%s: known only once the consumer is registered", res, attr)
	case typeStream:
		return "", errorf(where, "Fn::GetAtt %s.%s: the stream's name depends on itself", res, attr)
	}
	return res + "." + attr, nil
}

// sub implements Fn::Sub: a string, or [string, {name: value}].
func (e *evaluator) sub(arg any, where string) (any, error) {
	var (
		tmpl string
		vars = map[string]string{}
	)
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, errorf(where, "Fn::Sub takes a string or [string, {variables}]")
		}
		s, ok := a[0].(string)
		m, ok2 := a[1].(map[string]any)
		if !ok || !ok2 {
			return nil, errorf(where, "Fn::Sub takes a string or [string, {variables}]")
		}
		tmpl = s
		for _, k := range sortedKeys(m) {
			v, err := e.eval(m[k], join(where, k))
			if err != nil {
				return nil, err
			}
			if vars[k], ok = scalar(v); !ok {
				return nil, errorf(where, "Fn::Sub variable %s is %s, not a string", k, show(v))
			}
		}
	default:
		return nil, errorf(where, "Fn::Sub takes a string or [string, {variables}]")
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+2:]
		if strings.HasPrefix(rest, "!") { // ${!Literal} is written as ${Literal}
			b.WriteString("${")
			tmpl = rest[1:]
			continue
		}
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, errorf(where, "Fn::Sub: unterminated ${ in %q", tmpl)
		}
		name := strings.TrimSpace(rest[:j])
		tmpl = rest[j+1:]
		if v, ok := vars[name]; ok {
			b.WriteString(v)
			continue
		}
		var (
			v   any
			err error
		)
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = e.attribute(res, attr, where)
		} else {
			v, err = e.ref(name, where)
		}
		if err != nil {
			return nil, err
		}
		s, ok := scalar(v)
		if !ok {
			return nil, errorf(where, "Fn::Sub: ${%s} is %s, not a string", name, show(v))
		}
		b.WriteString(s)
	}
}

// scalar is v as a string when it is one (booleans print as CloudFormation
// prints them).
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// show renders a value for an error message, briefly.
func show(v any) string {
	s := fmt.Sprintf("%v", v)
	if _, ok := v.(string); ok {
		s = strconv.Quote(s)
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
