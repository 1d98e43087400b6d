package producer

import (
	"sync"
	"testing"
	"time"
)

// TestPendingPublishRacesDone: however Done, Result and publish interleave,
// every Done channel closes, and once it has, Result holds the one result.
func TestPendingPublishRacesDone(t *testing.T) {
	for i := range 2000 {
		var pd Pending
		want := Result{ShardID: "shardId-000000000001", SequenceNumber: "1", SubSequenceNumber: int64(i)}
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 3)
		for j := range chans {
			wg.Go(func() { chans[j] = pd.Done() })
		}
		wg.Go(func() { pd.publish(want, nil) })
		wg.Wait()
		for j, ch := range chans {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: Done channel %d never closed", i, j)
			}
			if got, ok := pd.Result(); !ok || got != want {
				t.Fatalf("round %d: Result after Done = %+v, %v", i, got, ok)
			}
		}
		select {
		case <-pd.Done():
		default:
			t.Fatalf("round %d: Done after publish is open", i)
		}
	}
}
