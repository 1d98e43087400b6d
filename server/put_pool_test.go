package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// TestPutRecordsReusedMemoryNeverCorruptsStoredRecords: puts decode into
// pooled memory that the next put reuses. Concurrent puts of records of
// varying sizes (so reused slabs overlap differently), then every record is
// read back exactly as put: on the stores that copy out of that memory, and
// on a store that keeps what it is given (which must get data of its own).
func TestPutRecordsReusedMemoryNeverCorruptsStoredRecords(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return store.NewMemory() },
		"disk":   func(t *testing.T) store.Store { return openDisk(t, t.TempDir(), store.DiskOptions{}) },
		"keeping": func(*testing.T) store.Store {
			return &keepingStore{Store: store.NewMemory(), logs: map[store.LogID]*keepingLog{}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{Store: open(t), DisableLimits: true})
			c := servertest.ClientHTTP11(t, srv, servertest.NoRetries)
			servertest.CreateStream(t, c, "pool", 2)
			const writers, puts, per = 4, 8, 40
			want := map[string][]byte{}
			var mu sync.Mutex // guards: want
			inParallel(t, writers, func(w int) error {
				for p := range puts {
					entries := make([]types.PutRecordsRequestEntry, per)
					for i := range entries {
						key := fmt.Sprintf("w%d-p%d-r%d", w, p, i)
						// Sizes vary by writer and put: 1 to 300 bytes.
						n := 1 + (w*53+p*29+i*11)%300
						data := bytes.Repeat([]byte(key), n/len(key)+1)[:n]
						entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: data}
						mu.Lock()
						want[key] = data
						mu.Unlock()
					}
					out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("pool"), Records: entries})
					if err == nil && aws.ToInt32(out.FailedRecordCount) != 0 {
						err = fmt.Errorf("%d records failed", aws.ToInt32(out.FailedRecordCount))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			got := 0
			for _, sh := range servertest.Shards(t, c, "pool") {
				for _, r := range servertest.ReadShard(t, c, "pool", aws.ToString(sh.ShardId)) {
					key := aws.ToString(r.PartitionKey)
					if data, ok := want[key]; !ok || !bytes.Equal(r.Data, data) {
						t.Fatalf("record %s reads %q, was put as %q", key, r.Data, data)
					}
					got++
				}
			}
			if got != len(want) {
				t.Fatalf("read %d records, put %d", got, len(want))
			}
		})
	}
}

// inParallel runs fn(0) to fn(n-1) in n goroutines, and fails t with the
// errors they return once all are done.
func inParallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- fn(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// keepingStore is a store that keeps the keys and data it is given instead
// of copies (a user's Store may), reading them back from there.
type keepingStore struct {
	store.Store
	mu   sync.Mutex // guards: logs
	logs map[store.LogID]*keepingLog
}

func (s *keepingStore) Log(id store.LogID) (store.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[id]; l != nil {
		return l, nil
	}
	inner, err := s.Store.Log(id)
	if err != nil {
		return nil, err
	}
	l := &keepingLog{Log: inner, kept: map[uint64]store.Record{}}
	s.logs[id] = l
	return l, nil
}

type keepingLog struct {
	store.Log
	mu   sync.Mutex // guards: kept
	kept map[uint64]store.Record
}

func (l *keepingLog) Append(recs []store.Record) (uint64, error) {
	first, err := l.Log.Append(recs)
	if err == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := range recs {
			l.kept[first+uint64(i)] = recs[i]
		}
	}
	return first, err
}

func (l *keepingLog) Read(from uint64, maxRecords, maxBytes int) ([]store.Record, error) {
	recs, err := l.Log.Read(from, maxRecords, maxBytes)
	recs = append([]store.Record(nil), recs...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range recs {
		kept := l.kept[recs[i].Position]
		recs[i].PartitionKey, recs[i].Data = kept.PartitionKey, kept.Data
	}
	return recs, err
}
