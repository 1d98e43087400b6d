package esm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A filter is one compiled FilterCriteria pattern: EventBridge pattern
// syntax over the record, of which Lambda lets Kinesis mappings use only
// the data key (the record's data decoded as JSON).
type filter struct{ data object }

// object is a pattern over a JSON object: every field must match (a field
// pattern is a nested object or a list of matchers, any of which may match),
// or one of the $or alternatives must.
type object struct {
	fields map[string]fieldPattern
	or     []object
}

type fieldPattern struct {
	nested   *object
	matchers []matcher
}

// matcher tests one JSON value; present is false when the field is missing.
type matcher func(v any, present bool) bool

// compileFilter parses one pattern.
func compileFilter(pattern string) (filter, error) {
	var top map[string]any
	d := json.NewDecoder(strings.NewReader(pattern))
	d.UseNumber()
	if err := d.Decode(&top); err != nil {
		return filter{}, fmt.Errorf("filter pattern %s is not a JSON object: %v", pattern, err)
	}
	for k := range top {
		if k != "data" {
			return filter{}, fmt.Errorf("filter pattern %s filters on %q: Kinesis mappings filter on data only", pattern, k)
		}
	}
	raw, ok := top["data"].(map[string]any)
	if !ok {
		return filter{}, fmt.Errorf("filter pattern %s: data must be an object of field patterns", pattern)
	}
	obj, err := compileObject(raw)
	if err != nil {
		return filter{}, fmt.Errorf("filter pattern %s: %v", pattern, err)
	}
	return filter{data: obj}, nil
}

func compileObject(raw map[string]any) (object, error) {
	obj := object{fields: map[string]fieldPattern{}}
	for k, v := range raw {
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return obj, errors.New("$or takes a list of at least two patterns")
			}
			for _, a := range alts {
				m, ok := a.(map[string]any)
				if !ok {
					return obj, errors.New("$or takes a list of objects")
				}
				alt, err := compileObject(m)
				if err != nil {
					return obj, err
				}
				obj.or = append(obj.or, alt)
			}
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			n, err := compileObject(v)
			if err != nil {
				return obj, err
			}
			obj.fields[k] = fieldPattern{nested: &n}
		case []any:
			if len(v) == 0 {
				return obj, fmt.Errorf("field %q has an empty list of matchers", k)
			}
			var fp fieldPattern
			for _, m := range v {
				mt, err := compileMatcher(m)
				if err != nil {
					return obj, fmt.Errorf("field %q: %v", k, err)
				}
				fp.matchers = append(fp.matchers, mt)
			}
			obj.fields[k] = fp
		default:
			return obj, fmt.Errorf("field %q must be an object or a list, not %v", k, v)
		}
	}
	return obj, nil
}

// compileMatcher compiles one list element: a literal (equals; null matches
// a null value) or an operator object.
func compileMatcher(m any) (matcher, error) {
	op, ok := m.(map[string]any)
	if !ok {
		return present(func(v any) bool { return equal(v, m) }), nil
	}
	if len(op) != 1 {
		return nil, fmt.Errorf("an operator object holds one operator, not %d", len(op))
	}
	for name, arg := range op {
		switch name {
		case "exists":
			want, ok := arg.(bool)
			if !ok {
				return nil, errors.New("exists takes true or false")
			}
			return func(v any, isPresent bool) bool {
				_, isObject := v.(map[string]any)
				return want == (isPresent && !isObject)
			}, nil
		case "prefix", "suffix", "equals-ignore-case":
			s, err := stringArg(name, arg)
			if err != nil {
				return nil, err
			}
			return present(stringTest(name, s)), nil
		case "numeric":
			return numericMatcher(arg)
		case "anything-but":
			return anythingBut(arg)
		default:
			return nil, fmt.Errorf("unknown operator %q", name)
		}
	}
	return nil, errors.New("empty operator object")
}

func stringArg(name string, arg any) (string, error) {
	s, ok := arg.(string)
	if !ok {
		return "", fmt.Errorf("%s takes a string, not %v", name, arg)
	}
	return s, nil
}

func stringTest(name, s string) func(v any) bool {
	return func(v any) bool {
		str, ok := v.(string)
		if !ok {
			return false
		}
		switch name {
		case "prefix":
			return strings.HasPrefix(str, s)
		case "suffix":
			return strings.HasSuffix(str, s)
		}
		return strings.EqualFold(str, s)
	}
}

// present makes a value test into a matcher that needs the field, and that
// matches a list when any element does.
func present(test func(v any) bool) matcher {
	return func(v any, isPresent bool) bool {
		if !isPresent {
			return false
		}
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if test(e) {
					return true
				}
			}
			return false
		}
		return test(v)
	}
}

func anythingBut(arg any) (matcher, error) {
	switch a := arg.(type) {
	case map[string]any:
		if len(a) != 1 {
			return nil, errors.New("anything-but takes one of prefix, suffix, equals-ignore-case")
		}
		for name, s := range a {
			if name != "prefix" && name != "suffix" && name != "equals-ignore-case" {
				return nil, fmt.Errorf("anything-but does not take %q", name)
			}
			str, err := stringArg(name, s)
			if err != nil {
				return nil, err
			}
			test := stringTest(name, str)
			return present(func(v any) bool { _, isString := v.(string); return isString && !test(v) }), nil
		}
	case []any:
		return present(func(v any) bool {
			for _, x := range a {
				if equal(v, x) {
					return false
				}
			}
			return true
		}), nil
	case string, json.Number:
		return present(func(v any) bool { return !equal(v, a) }), nil
	}
	return nil, fmt.Errorf("anything-but takes a value, a list or an operator, not %v", arg)
}

func numericMatcher(arg any) (matcher, error) {
	terms, ok := arg.([]any)
	if !ok || len(terms) == 0 || len(terms)%2 != 0 || len(terms) > 4 {
		return nil, fmt.Errorf("numeric takes one or two (operator, number) pairs, not %v", arg)
	}
	type cmp struct {
		op string
		n  float64
	}
	var cmps []cmp
	for i := 0; i < len(terms); i += 2 {
		op, ok := terms[i].(string)
		num, isNum := terms[i+1].(json.Number)
		if !ok || !isNum {
			return nil, fmt.Errorf("numeric takes (operator, number) pairs, not %v", arg)
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("numeric operator %q is none of =, <, <=, >, >=", op)
		}
		f, err := num.Float64()
		if err != nil {
			return nil, fmt.Errorf("numeric: %v", err)
		}
		cmps = append(cmps, cmp{op, f})
	}
	return present(func(v any) bool {
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		if err != nil {
			return false
		}
		for _, c := range cmps {
			var ok bool
			switch c.op {
			case "=":
				ok = f == c.n
			case "<":
				ok = f < c.n
			case "<=":
				ok = f <= c.n
			case ">":
				ok = f > c.n
			case ">=":
				ok = f >= c.n
			}
			if !ok {
				return false
			}
		}
		return true
	}), nil
}

// equal compares a JSON value with a pattern literal; numbers by value.
func equal(v, lit any) bool {
	if a, ok := v.(json.Number); ok {
		b, ok := lit.(json.Number)
		if !ok {
			return false
		}
		fa, err1 := a.Float64()
		fb, err2 := b.Float64()
		return err1 == nil && err2 == nil && fa == fb
	}
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return v == lit
}

func (o object) match(doc map[string]any) bool {
	for k, fp := range o.fields {
		v, isPresent := doc[k]
		if fp.nested != nil {
			sub, ok := v.(map[string]any)
			if !ok || !fp.nested.match(sub) {
				return false
			}
			continue
		}
		matched := false
		for _, m := range fp.matchers {
			if m(v, isPresent) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if len(o.or) == 0 {
		return true
	}
	for _, alt := range o.or {
		if alt.match(doc) {
			return true
		}
	}
	return false
}

// matchAny reports whether data (a record's payload) matches one of the
// filters. Data that is not a JSON object matches none.
func matchAny(filters []filter, data []byte) bool {
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil || doc == nil {
		return false
	}
	for _, f := range filters {
		if f.data.match(doc) {
			return true
		}
	}
	return false
}
