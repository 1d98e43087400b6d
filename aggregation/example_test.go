package aggregation_test

import (
	"errors"
	"fmt"

	"github.com/ksp-project/ksp/aggregation"
)

// A producer packs user records into one Kinesis record; a consumer takes
// them out again with their own keys and sub-sequence numbers.
func Example() {
	var agg aggregation.Aggregator // zero value: 51200-byte containers
	for i, pk := range []string{"alpha", "beta", "alpha"} {
		if err := agg.Add(pk, "", fmt.Appendf(nil, "record %d", i)); err != nil {
			panic(err)
		}
	}
	c := agg.Build(nil)
	fmt.Printf("put %d records under partition key %q, %d bytes\n", c.Records, c.PartitionKey, len(c.Data))

	// ... PutRecords, then GetRecords returns it with a sequence number.
	got := aggregation.Deaggregate(nil, aggregation.KinesisRecord{
		Data: c.Data, PartitionKey: c.PartitionKey, SequenceNumber: "4959",
	})
	for _, r := range got {
		fmt.Printf("%s/%d %s %q\n", r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
	}
	// Output:
	// put 3 records under partition key "a", 75 bytes
	// 4959/0 alpha "record 0"
	// 4959/1 beta "record 1"
	// 4959/2 alpha "record 2"
}

// Add refuses a record that would overfill the container: build it, then add
// the record again.
func ExampleAggregator_Add() {
	agg, err := aggregation.NewAggregator(aggregation.MaxSize(100))
	if err != nil {
		panic(err)
	}
	put := func(c aggregation.Container) {
		fmt.Printf("put %d bytes with %d user records\n", len(c.Data)+len(c.PartitionKey), c.Records)
	}
	for i := range 5 {
		err := agg.Add(fmt.Sprint("key-", i), "", make([]byte, 20))
		if errors.Is(err, aggregation.ErrFull) {
			put(agg.Build(nil))
			err = agg.Add(fmt.Sprint("key-", i), "", make([]byte, 20))
		}
		if err != nil {
			panic(err) // ErrTooLarge or ErrInvalidRecord: reject the record
		}
	}
	put(agg.Build(nil))
	// Output:
	// put 87 bytes with 2 user records
	// put 87 bytes with 2 user records
	// put 25 bytes with 1 user records
}
