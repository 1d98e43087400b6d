package feed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/ksp-project/ksp/producer"
)

// Item is one chunk of input: Data is the record's payload.
type Item struct {
	Source string // the input's name ("-" for stdin)
	Line   int    // 1-based chunk number within the input: the line number with the default delimiter
	Data   []byte
}

// A Keyer picks an item's partition key.
type Keyer interface {
	Key(Item) (string, error)
}

type keyFunc func(Item) (string, error)

func (f keyFunc) Key(it Item) (string, error) { return f(it) }

// Fixed gives every item the key k.
func Fixed(k string) Keyer { return keyFunc(func(Item) (string, error) { return k, nil }) }

// Random gives every item a random key, spreading items evenly over shards.
func Random() Keyer { return keyFunc(func(Item) (string, error) { return producer.RandomKey(), nil }) }

// Template makes the key by executing a text/template over the item:
// {{.Source}}, {{.Line}} and {{.Data}} (the payload as a string).
func Template(text string) (Keyer, error) {
	t, err := template.New("key").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("key template %q: %v", text, err)
	}
	return keyFunc(func(it Item) (string, error) {
		var b strings.Builder
		err := t.Execute(&b, struct {
			Source string
			Line   int
			Data   string
		}{it.Source, it.Line, string(it.Data)})
		return b.String(), err
	}), nil
}

// JSONField takes the key from a field of the item's JSON object: a string
// or a number, as written; a dotted path ("user.id") reaches into nested
// objects.
func JSONField(path string) Keyer {
	parts := strings.Split(path, ".")
	return keyFunc(func(it Item) (string, error) {
		dec := json.NewDecoder(bytes.NewReader(it.Data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("not a JSON object: %v", err)
		}
		for _, p := range parts {
			obj, ok := v.(map[string]any)
			if !ok {
				return "", fmt.Errorf("no field %q: not inside a JSON object", path)
			}
			if v, ok = obj[p]; !ok {
				return "", fmt.Errorf("no field %q", path)
			}
		}
		switch v := v.(type) {
		case string:
			if v == "" {
				return "", fmt.Errorf("field %q is empty", path)
			}
			return v, nil
		case json.Number:
			return v.String(), nil
		}
		return "", fmt.Errorf("field %q is %T, not a string or number", path, v)
	})
}
