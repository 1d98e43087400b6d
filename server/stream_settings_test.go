package server_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestEncryptionMonitoringMaxRecordSize(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	name := aws.String("settings")
	servertest.CreateStream(t, c, "settings", 1)
	describe := func() *types.StreamDescription {
		t.Helper()
		d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: name})
		if err != nil {
			t.Fatal(err)
		}
		return d.StreamDescription
	}

	// Encryption.
	if _, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	if d := describe(); d.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.KeyId) != "alias/aws/kinesis" {
		t.Fatalf("after StartStreamEncryption: %s %v", d.EncryptionType, aws.ToString(d.KeyId))
	}
	_, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeNone, KeyId: aws.String("k")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "KMS")
	_, err = c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: "AES", KeyId: aws.String("k")})
	wantCode(t, err, kds.ErrCodeValidation, "Value 'AES' at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, KMS]")
	_, err = c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("missing"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("k")})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "missing")
	if _, err := c.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	if d := describe(); d.EncryptionType != types.EncryptionTypeNone || d.KeyId != nil {
		t.Fatalf("after StopStreamEncryption: %s %v", d.EncryptionType, aws.ToString(d.KeyId))
	}

	// Enhanced monitoring: ALL expands; Current is before, Desired after.
	en, err := c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	if err != nil {
		t.Fatal(err)
	}
	if len(en.CurrentShardLevelMetrics) != 0 || !slices.Equal(en.DesiredShardLevelMetrics, []types.MetricsName{types.MetricsNameIncomingBytes}) || aws.ToString(en.StreamName) != "settings" {
		t.Fatalf("EnableEnhancedMonitoring: %+v", en)
	}
	en, err = c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(en.CurrentShardLevelMetrics) != 1 || len(en.DesiredShardLevelMetrics) != 7 || slices.Contains(en.DesiredShardLevelMetrics, types.MetricsNameAll) {
		t.Fatalf("enable ALL: %+v", en)
	}
	if m := describe().EnhancedMonitoring; len(m) != 1 || len(m[0].ShardLevelMetrics) != 7 {
		t.Fatalf("DescribeStream EnhancedMonitoring after ALL: %+v", m)
	}
	dis, err := c.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameIteratorAgeMilliseconds}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dis.CurrentShardLevelMetrics) != 7 || len(dis.DesiredShardLevelMetrics) != 6 || slices.Contains(dis.DesiredShardLevelMetrics, types.MetricsNameIteratorAgeMilliseconds) {
		t.Fatalf("disable one: %+v", dis)
	}
	if _, err := c.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}}); err != nil {
		t.Fatal(err)
	}
	if m := describe().EnhancedMonitoring; len(m) != 1 || len(m[0].ShardLevelMetrics) != 0 {
		t.Fatalf("after disabling ALL: %+v", m)
	}
	_, err = c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{"Bogus"}})
	wantCode(t, err, kds.ErrCodeValidation, "Value '[Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes")
	_, err = c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{}})
	wantCode(t, err, kds.ErrCodeValidation, "at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1")

	// Max record size: reported and enforced.
	arn := describe().StreamARN
	big := bytes.Repeat([]byte("x"), 2<<20)
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: big, PartitionKey: aws.String("k")})
	wantCode(t, err, kds.ErrCodeValidation, "Value 'java.nio.HeapByteBuffer[pos=0 lim=2097152 cap=2097152]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
	_, err = c.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(512)})
	wantCode(t, err, kds.ErrCodeValidation, "Value '512' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value greater than or equal to 1024")
	_, err = c.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(10241)})
	wantCode(t, err, kds.ErrCodeValidation, "less than or equal to 10240")
	if _, err := c.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(4096)}); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.MaxRecordSizeInKiB) != 4096 {
		t.Fatalf("DescribeStreamSummary MaxRecordSizeInKiB: %v %v", sum, err)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: big, PartitionKey: aws.String("k")}); err != nil {
		t.Fatalf("2 MiB record under a 4 MiB MaxRecordSize: %v", err)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: bytes.Repeat([]byte("x"), 5<<20), PartitionKey: aws.String("k")})
	wantCode(t, err, kds.ErrCodeValidation, "at 'data' failed to satisfy constraint: Member must have length less than or equal to 4194304")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: bytes.Repeat([]byte("x"), 4<<20), PartitionKey: aws.String("k")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Record size (data + partition key) of 4194305 bytes for record 1 exceeds the MaxRecordSize of 4194304 bytes")
}
