package dynamoattr

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestTypeName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    types.AttributeValue
		want string
	}{
		{nil, ""},
		{&types.AttributeValueMemberS{Value: "x"}, "S"},
		{&types.AttributeValueMemberN{Value: "1"}, "N"},
		{&types.AttributeValueMemberB{}, "B"},
		{&types.AttributeValueMemberSS{}, "SS"},
		{&types.AttributeValueMemberNS{}, "NS"},
		{&types.AttributeValueMemberBS{}, "BS"},
		{&types.AttributeValueMemberM{}, "M"},
		{&types.AttributeValueMemberL{}, "L"},
		{&types.AttributeValueMemberBOOL{}, "BOOL"},
		{&types.AttributeValueMemberNULL{}, "NULL"},
		{&types.UnknownUnionMember{Tag: "X"}, "*types.UnknownUnionMember"},
	} {
		if got := TypeName(tc.v); got != tc.want {
			t.Errorf("TypeName(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
