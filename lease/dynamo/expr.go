package dynamo

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// expr collects the placeholders of one request's expressions. Every
// attribute goes through a #name placeholder, so no KCL attribute name can
// clash with a DynamoDB reserved word.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

// name returns the placeholder of an attribute name (KCL names are
// alphanumeric, so the name itself makes a valid placeholder).
func (e *expr) name(attr string) string {
	ph := "#" + attr
	e.names[ph] = attr
	return ph
}

// value returns a new placeholder for v.
func (e *expr) value(v types.AttributeValue) string {
	ph := ":v" + strconv.Itoa(len(e.values))
	e.values[ph] = v
	return ph
}

func (e *expr) valuesOrNil() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}
