package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/ksp-project/ksp/lease/internal/rules"
)

// ownerIndex is the KCL 3.x GSI from worker to its leases
// (DynamoDBLeaseRefresher.LEASE_OWNER_TO_LEASE_KEY_INDEX_NAME): hash key
// leaseOwner (S), range key leaseKey (S), projection KEYS_ONLY
// (DynamoDBLeaseSerializer.getWorkerIdToLeaseKeyIndexKeySchema). Only items
// with a leaseOwner are in it, so the KCL's items that are not leases (they
// have none) never are.
const ownerIndex = "LeaseOwnerToLeaseKeyIndex"

// ownerIndexAttributes are the attribute definitions the table and its
// index need (getWorkerIdToLeaseKeyIndexAttributeDefinitions).
func ownerIndexAttributes() []types.AttributeDefinition {
	return []types.AttributeDefinition{
		{AttributeName: aws.String(attrLeaseKey), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(attrLeaseOwner), AttributeType: types.ScalarAttributeTypeS},
	}
}

func ownerIndexKeySchema() []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(attrLeaseOwner), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeRange},
	}
}

// ownerIndexDefinition is the index for CreateTable; pt is nil on a
// PAY_PER_REQUEST table.
func ownerIndexDefinition(pt *types.ProvisionedThroughput) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:             aws.String(ownerIndex),
		KeySchema:             ownerIndexKeySchema(),
		Projection:            &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		ProvisionedThroughput: pt,
	}
}

// indexStatus returns the status of the table's index name, or "" when the
// table has no such index.
func indexStatus(td *types.TableDescription, name string) types.IndexStatus {
	for _, gsi := range td.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == name {
			return gsi.IndexStatus
		}
	}
	return ""
}

// createOwnerIndex adds the index to an existing table with the UpdateTable
// the KCL sends: on a provisioned table the index gets the table's read and
// write capacity, on a PAY_PER_REQUEST table none. It returns the index's
// status (CREATING).
func (s *Store) createOwnerIndex(ctx context.Context, td *types.TableDescription) (types.IndexStatus, error) {
	var pt *types.ProvisionedThroughput
	payPerRequest := td.BillingModeSummary != nil && td.BillingModeSummary.BillingMode == types.BillingModePayPerRequest
	if !payPerRequest && td.ProvisionedThroughput != nil {
		pt = &types.ProvisionedThroughput{
			ReadCapacityUnits:  td.ProvisionedThroughput.ReadCapacityUnits,
			WriteCapacityUnits: td.ProvisionedThroughput.WriteCapacityUnits,
		}
	}
	gsi := ownerIndexDefinition(pt)
	out, err := s.client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:            &s.table,
		AttributeDefinitions: ownerIndexAttributes(),
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection, ProvisionedThroughput: gsi.ProvisionedThroughput,
		}}},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		// Another worker is adding it (or the table is busy): a later start
		// adds it if it is still missing.
		return types.IndexStatusCreating, nil
	}
	if isValidation(err) {
		// An emulator that cannot add a GSI to a table (dynalite): the
		// store works without it, scanning instead.
		return "", nil
	}
	if err != nil {
		return "", s.wrap("create index "+ownerIndex, "", err)
	}
	if out.TableDescription == nil {
		return types.IndexStatusCreating, nil
	}
	return indexStatus(out.TableDescription, ownerIndex), nil
}

// ListLeaseKeysForWorker implements lease.Store with the Query the KCL 3.x
// sends (DynamoDBLeaseRefresher.listLeaseKeysForWorker): on the
// LeaseOwnerToLeaseKeyIndex, key condition leaseOwner = :leaseOwner, page by
// page. Like every read of a GSI it is eventually consistent. While the
// index is missing or still being built (a table a KCL 2.x created), it
// scans the table for the worker's leases instead.
func (s *Store) ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	if err := rules.CheckWorker(worker); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	e := newExpr()
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(ownerIndex),
		KeyConditionExpression:    aws.String(e.name(attrLeaseOwner) + " = " + e.value(avS(worker))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}
	out := []string{}
	for {
		page, err := s.client.Query(ctx, in)
		if isValidation(err) {
			return s.scanKeysForWorker(ctx, worker)
		}
		if err != nil {
			return nil, s.wrap("list for worker", "", err)
		}
		for _, item := range page.Items {
			if k, ok := item[attrLeaseKey].(*types.AttributeValueMemberS); ok {
				out = append(out, k.Value)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.Sort(out)
	return out, nil
}

// isValidation reports DynamoDB's answer to a Query on an index the table
// does not have, or has not finished building (and an emulator's refusal to
// add one).
func isValidation(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException"
}

// scanKeysForWorker is ListLeaseKeysForWorker without the index.
func (s *Store) scanKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	out := []string{}
	err := s.scan(ctx, "list for worker", func(item map[string]types.AttributeValue) bool {
		owner, ok := item[attrLeaseOwner].(*types.AttributeValueMemberS)
		key, hasKey := item[attrLeaseKey].(*types.AttributeValueMemberS)
		if ok && hasKey && owner.Value == worker && isLease(item) {
			out = append(out, key.Value)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%w (scanning: the index %s is not usable)", err, ownerIndex)
	}
	slices.Sort(out)
	return out, nil
}
