package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store/storetest"
)

// TestH2CCanceledGetRecordsNeverCorruptOtherAnswers: GetRecords answers are
// written from pooled buffers given back once the handler's writes return.
// Over h2c, clients reset streams (a cancelled context) while the server is
// still writing a 700 KB answer (held by a 64 KiB stream window), on the
// connection other clients read the same answer from; every answer those
// read is complete and holds the records exactly as put, and (under -race)
// no write of x/net's server reads a buffer a handler has given back.
func TestH2CCanceledGetRecordsNeverCorruptOtherAnswers(t *testing.T) {
	var logs storetest.LogBuffer
	srv := servertest.Start(t, server.Options{DisableLimits: true, Logger: logs.Logger()})
	ctx := context.Background()
	c := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, c, "cancel", 1)
	const n, size = 1000, 500
	want := make([][]byte, n)
	for b := 0; b < n; b += 500 {
		entries := make([]types.PutRecordsRequestEntry, min(500, n-b))
		for i := range entries {
			want[b+i] = bytes.Repeat([]byte(fmt.Sprintf("%05d|", b+i)), size/6+1)[:size]
			entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(b + i)), Data: want[b+i]}
		}
		if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("cancel"), Records: entries}); err != nil {
			t.Fatal(err)
		}
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("cancel"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protocols, HTTP2: &http.HTTP2Config{
		MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 1 << 20,
	}}}
	t.Cleanup(h2.CloseIdleConnections)
	get := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL(), strings.NewReader(`{"ShardIterator":"`+aws.ToString(it.ShardIterator)+`"}`))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
		return h2.Do(req)
	}
	check := func() error {
		resp, err := get(ctx)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			return fmt.Errorf("%s %d, %d bytes: %v", resp.Proto, resp.StatusCode, len(body), err)
		}
		if resp.ContentLength != int64(len(body)) {
			return fmt.Errorf("Content-Length %d, read %d bytes", resp.ContentLength, len(body))
		}
		var out struct{ Records []struct{ Data []byte } }
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		if len(out.Records) != n {
			return fmt.Errorf("%d records, want %d", len(out.Records), n)
		}
		for i, r := range out.Records {
			if !bytes.Equal(r.Data, want[i]) {
				return fmt.Errorf("record %d reads %.40q…, was put as %.40q…", i, r.Data, want[i])
			}
		}
		return nil
	}
	const cancellers, cancels, readers, reads = 3, 8, 2, 3
	inParallel(t, cancellers+readers, func(g int) error {
		if g >= cancellers {
			for range reads {
				if err := check(); err != nil {
					return err
				}
			}
			return nil
		}
		for i := range cancels {
			ctx, cancel := context.WithCancel(ctx)
			resp, err := get(ctx)
			if err == nil {
				// Stop anywhere in the first 200 KB: the server is still
				// writing, held by the stream's window.
				io.CopyN(io.Discard, resp.Body, int64((g*cancels+i)*7919%(200<<10)))
			}
			cancel()
			if err == nil {
				resp.Body.Close()
			}
		}
		return nil
	})
	// The scenario happened: handlers saw their stream reset mid-answer.
	if !strings.Contains(logs.String(), `msg="writing response" op=GetRecords err=`) {
		t.Fatalf("no GetRecords answer was cut short; log:\n%s", logs.String())
	}
}
