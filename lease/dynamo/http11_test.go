package dynamo_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestStoreOverLateHTTP11 drives every kind of call the store makes over
// HTTP/1.1 connections that expose smithy-go's HTTP/1.1 bug on every
// request (servertest.LateHTTPClient), through a client without ksp's
// workaround: the store applies it to each call, so none is cut. The leases
// carry 1 KiB of attributes the KCL might add, so that the Scan's answer
// takes longer to read than the late write takes to return. The client
// does not retry, so a cut call fails the test rather than being hidden by
// a retry (and its back-off). Run by TestDynamo, on its dynalite.
func testStoreOverLateHTTP11(t *testing.T, url string) {
	late := newClient(url, servertest.LateHTTPClient())
	late = dynamodb.New(late.Options(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	s := newTable(t, late)
	mustTable(t, s) // CreateTable, DescribeTable
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000000", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err) // PutItem
	}
	fast := newClient(url, nil)
	for i := 1; i < 40; i++ {
		item := map[string]types.AttributeValue{
			"leaseKey": sAV(fmt.Sprintf("shardId-%012d", i)), "leaseCounter": nAV("0"),
			"checkpoint": sAV("TRIM_HORIZON"), "ownerSwitchesSinceCheckpoint": nAV("0"),
			"padding": sAV(strings.Repeat("x", 1024)),
		}
		if _, err := fast.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: item}, sdkhttp.FixDynamoDB); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.ListLeases(ctx) // Scan: a 40 KB answer
	if err != nil || len(ls) != 40 {
		t.Fatalf("ListLeases = %d leases, %v; want 40", len(ls), err)
	}
	l, err := s.TakeLease(ctx, ls[0].LeaseKey, "", ls[0].LeaseCounter, "w1") // UpdateItem
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, l.LeaseKey); err != nil { // GetItem
		t.Fatal(err)
	}
	if err := s.DeleteLease(ctx, l.LeaseKey); err != nil { // DeleteItem
		t.Fatal(err)
	}
}
