// Package dynamoattr names DynamoDB attribute value types the way DynamoDB
// itself does ("S", "N", "SS"...), for the lease store's decode errors and
// for the tests that check a lease table's layout against the KCL's.
package dynamoattr

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TypeName returns v's DynamoDB type descriptor, "" for a missing value (nil),
// and the Go type for a value of a type DynamoDB does not define.
func TypeName(v types.AttributeValue) string {
	switch v.(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	}
	return fmt.Sprintf("%T", v)
}
