package deploy

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The template is built as a yaml.Node tree so that key order is the
// order written here and intrinsics use CloudFormation's short forms.

// obj builds a mapping from alternating keys and values; a value is a
// *yaml.Node, string, int, bool or []string. A nil *yaml.Node value drops
// the pair, which lets optional properties be written inline.
func obj(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		v := node(kv[i+1])
		if v == nil {
			continue
		}
		n.Content = append(n.Content, str(kv[i].(string)), v)
	}
	return n
}

// add appends key: value to a mapping built by obj.
func add(m *yaml.Node, key string, v any) {
	if n := node(v); n != nil {
		m.Content = append(m.Content, str(key), n)
	}
}

func list(items ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		if v := node(it); v != nil {
			n.Content = append(n.Content, v)
		}
	}
	return n
}

func node(v any) *yaml.Node {
	switch v := v.(type) {
	case *yaml.Node:
		return v
	case string:
		return str(v)
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(v, 'f', -1, 64)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case []string:
		n := list()
		for _, s := range v {
			n.Content = append(n.Content, str(s))
		}
		return n
	}
	return nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func tagged(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func ref(name string) *yaml.Node         { return tagged("!Ref", name) }
func getAtt(res, attr string) *yaml.Node { return tagged("!GetAtt", res+"."+attr) }
func sub(s string) *yaml.Node            { return tagged("!Sub", s) }
func condition(name string) *yaml.Node   { return tagged("!Condition", name) }
func fnNot(arg *yaml.Node) *yaml.Node    { return withTag("!Not", list(arg)) }
func fnEquals(a, b any) *yaml.Node       { return withTag("!Equals", list(a, b)) }

func withTag(tag string, n *yaml.Node) *yaml.Node {
	n.Tag = tag
	return n
}
