package cfn

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTemplate: no input makes Parse or Resolve panic, and every rejected
// input is a ValidationError.
func FuzzTemplate(f *testing.F) {
	f.Add([]byte(shortForms))
	f.Add([]byte(`{"Resources": {"S": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 2}}}}`))
	f.Add([]byte("Resources:\n  S: {Type: AWS::Kinesis::Stream, Properties: {Name: !Sub '${!x}${AWS::Region}'}}\n"))
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := Parse(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error %T %v is not an *Error", err, err)
			}
			return
		}
		if _, err := tpl.Resolve(Env{Parameters: map[string]string{}}); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Resolve error %T %v is not an *Error", err, err)
			}
		}
	})
}
