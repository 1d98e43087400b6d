package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ksp-project/ksp/sdkhttp"
)

// fixedAPI passes sdkhttp.FixDynamoDB to every call, the workaround for
// smithy-go's HTTP/1.1 bug that cuts responses (see package sdkhttp). It
// names each method, so a method added to API does not compile until it
// applies the fix too.
type fixedAPI struct{ api API }

func withFix(optFns []func(*dynamodb.Options)) []func(*dynamodb.Options) {
	return append(optFns[:len(optFns):len(optFns)], sdkhttp.FixDynamoDB)
}

func (f fixedAPI) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return f.api.CreateTable(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return f.api.DescribeTable(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.api.GetItem(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return f.api.PutItem(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return f.api.UpdateItem(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return f.api.DeleteItem(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return f.api.Scan(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error) {
	return f.api.UpdateTable(ctx, in, withFix(optFns)...)
}

func (f fixedAPI) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return f.api.Query(ctx, in, withFix(optFns)...)
}
