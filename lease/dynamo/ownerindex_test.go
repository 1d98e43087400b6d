package dynamo_test

import (
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
)

// checkOwnerIndex checks td has the KCL 3.x LeaseOwnerToLeaseKeyIndex as
// DynamoDBLeaseRefresher creates it: hash leaseOwner, range leaseKey,
// KEYS_ONLY, both keys defined as strings.
func checkOwnerIndex(t *testing.T, td *types.TableDescription) {
	t.Helper()
	defs := map[string]types.ScalarAttributeType{}
	for _, d := range td.AttributeDefinitions {
		defs[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	if want := map[string]types.ScalarAttributeType{"leaseKey": "S", "leaseOwner": "S"}; !reflect.DeepEqual(defs, want) {
		t.Fatalf("attribute definitions = %v, want %v", defs, want)
	}
	if len(td.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("table has %d GSIs, want 1 (LeaseOwnerToLeaseKeyIndex)", len(td.GlobalSecondaryIndexes))
	}
	gsi := td.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != "LeaseOwnerToLeaseKeyIndex" {
		t.Fatalf("GSI name = %q, want LeaseOwnerToLeaseKeyIndex", aws.ToString(gsi.IndexName))
	}
	var keys []string
	for _, k := range gsi.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	if want := []string{"leaseOwner HASH", "leaseKey RANGE"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("GSI key schema = %q, want %q", keys, want)
	}
	if gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeKeysOnly {
		t.Fatalf("GSI projection = %+v, want KEYS_ONLY", gsi.Projection)
	}
}

// targets records the DynamoDB operation of every request.
type targets struct {
	mu  sync.Mutex // guards: ops
	ops []string
}

func (r *targets) Do(req *http.Request) (*http.Response, error) {
	t := req.Header.Get("X-Amz-Target")
	r.mu.Lock()
	r.ops = append(r.ops, t[strings.LastIndexByte(t, '.')+1:])
	r.mu.Unlock()
	return http.DefaultClient.Do(req)
}

func (r *targets) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ops
	r.ops = nil
	return out
}

// seedOwners creates leases owned by w1 (three), w2 (one) and nobody, and
// the items of a KCL 3.5 table that are not leases.
func seedOwners(t *testing.T, client *dynamodb.Client, s *dynamo.Store) {
	t.Helper()
	for i, o := range []string{"w1", "w2", "w1", "", "w1"} {
		l := lease.Lease{LeaseKey: "shardId-00000000000" + string(rune('0'+i)), LeaseOwner: o, Checkpoint: lease.TrimHorizon}
		if _, err := s.CreateLeaseIfNotExists(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, item := range kcltable.NonLeaseItems("w1", "w2") {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
}

// testOwnerIndexQueried: a table ksp creates has the GSI, and a worker's
// lease keys come from one Query on it, never a Scan.
func testOwnerIndexQueried(t *testing.T, url string) {
	rec := &targets{}
	client := newClient(url, rec)
	s := newTable(t, client)
	mustTable(t, s)
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Table())})
	if err != nil {
		t.Fatal(err)
	}
	checkOwnerIndex(t, out.Table)
	if st := out.Table.GlobalSecondaryIndexes[0].IndexStatus; st != types.IndexStatusActive {
		t.Fatalf("GSI status = %s, want ACTIVE", st)
	}
	seedOwners(t, client, s)
	rec.take()
	keys, err := s.ListLeaseKeysForWorker(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	// The KCL's items that are not leases have no leaseOwner, so they are
	// not in the index.
	if want := []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000004"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("ListLeaseKeysForWorker(w1) = %q, want %q", keys, want)
	}
	if ops := rec.take(); !reflect.DeepEqual(ops, []string{"Query"}) {
		t.Fatalf("ListLeaseKeysForWorker sent %q, want one Query on the index", ops)
	}
	// Starting again on the table sends no UpdateTable: the index is there.
	if _, err := s.CreateTableIfNotExists(ctx); err != nil {
		t.Fatal(err)
	}
	if ops := rec.take(); !reflect.DeepEqual(ops, []string{"DescribeTable"}) {
		t.Fatalf("CreateTableIfNotExists on a table with the index sent %q, want only DescribeTable", ops)
	}
}

// testNoOwnerIndexScans: on a table without the index (as a KCL 2.x
// created it; dynalite cannot add one later) the keys come from a scan that
// leaves out items that are not leases.
func testNoOwnerIndexScans(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(s.Table()),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	mustTable(t, s)
	seedOwners(t, client, s)
	keys, err := s.ListLeaseKeysForWorker(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000004"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("ListLeaseKeysForWorker(w1) without the index = %q, want %q", keys, want)
	}
}

// A table without the index (a KCL 2.x table) gains it when ksp starts on
// it, with the UpdateTable the KCL 3.x sends; then the keys come from the
// index. dynalite cannot add a GSI to a table, so this runs against moto.
func TestOwnerIndexAddedToExistingTable(t *testing.T) {
	t.Parallel()
	url := peers.StartMoto(t)
	rec := &targets{}
	client := newClient(url, rec)
	for _, mode := range []struct {
		name string
		in   dynamodb.CreateTableInput
	}{
		{"PayPerRequest", dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest}},
		{"Provisioned", dynamodb.CreateTableInput{ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(7), WriteCapacityUnits: aws.Int64(9)}}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s := newTable(t, client)
			in := mode.in
			in.TableName = aws.String(s.Table())
			in.KeySchema = []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}}
			in.AttributeDefinitions = []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}}
			if _, err := client.CreateTable(ctx, &in); err != nil {
				t.Fatal(err)
			}
			mustTable(t, s)
			if created, err := s.CreateTableIfNotExists(ctx); err != nil || created {
				t.Fatalf("CreateTableIfNotExists on an existing table = %v, %v; want false, nil", created, err)
			}
			out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
			if err != nil {
				t.Fatal(err)
			}
			checkOwnerIndex(t, out.Table)
			pt := out.Table.GlobalSecondaryIndexes[0].ProvisionedThroughput
			if in.ProvisionedThroughput != nil && (pt == nil || aws.ToInt64(pt.ReadCapacityUnits) != 7 || aws.ToInt64(pt.WriteCapacityUnits) != 9) {
				t.Fatalf("GSI throughput = %+v, want the table's 7 RCU / 9 WCU", pt)
			}
			seedOwners(t, client, s)
			rec.take()
			keys, err := s.ListLeaseKeysForWorker(ctx, "w2")
			if err != nil || !reflect.DeepEqual(keys, []string{"shardId-000000000001"}) {
				t.Fatalf("ListLeaseKeysForWorker(w2) = %q, %v", keys, err)
			}
			if ops := rec.take(); !reflect.DeepEqual(ops, []string{"Query"}) {
				t.Fatalf("ListLeaseKeysForWorker sent %q, want one Query on the index", ops)
			}
		})
	}
}
