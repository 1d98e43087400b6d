package aggregation

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksp-project/ksp/kds"
)

// pbRecord encodes one Record message field by field; fields are appended as
// given, so tests can write malformed ones.
func pbRecord(fields ...[]byte) []byte { return bytes.Join(fields, nil) }

func pkIndex(i uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, fieldPartitionKeyIndex, protowire.VarintType), i)
}

func ehkIndex(i uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, fieldExplicitHashKeyIndex, protowire.VarintType), i)
}

func dataField(d string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, fieldData, protowire.BytesType), d)
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func tagField(key, value string, withKey bool) []byte {
	var tag []byte
	if withKey {
		tag = bytesField(fieldTagKey, []byte(key))
	}
	tag = append(tag, bytesField(2, []byte(value))...)
	return bytesField(fieldTags, tag)
}

var arrival = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func outer(data []byte) KinesisRecord {
	return KinesisRecord{Data: data, PartitionKey: "outer", SequenceNumber: "4960", ApproximateArrivalTimestamp: arrival}
}

// checkPassedThrough asserts rec came out as itself, one record.
func checkPassedThrough(t *testing.T, got []UserRecord, rec KinesisRecord, wantErr error) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1 passed through: %+v", len(got), got)
	}
	g := got[0]
	if g.Aggregated || g.SubSequenceNumber != 0 || g.PartitionKey != rec.PartitionKey || g.ExplicitHashKey != "" ||
		g.SequenceNumber != rec.SequenceNumber || !g.ApproximateArrivalTimestamp.Equal(rec.ApproximateArrivalTimestamp) ||
		!bytes.Equal(g.Data, rec.Data) {
		t.Fatalf("passed-through record %+v does not match the Kinesis record", g)
	}
	if wantErr == nil && g.Err != nil || wantErr != nil && !errors.Is(g.Err, wantErr) {
		t.Fatalf("Err = %v, want %v", g.Err, wantErr)
	}
}

func TestNotAggregatedPassesThrough(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{nil, {}, []byte("plain"), []byte(magic[:3]), []byte("\xF3\x89\x9A\xC3" + "0123456789abcdef0123")} {
		rec := outer(data)
		checkPassedThrough(t, Deaggregate(nil, rec), rec, nil)
		got, dropped := DeaggregateShard(nil, rec, kds.HashKeyRange{})
		checkPassedThrough(t, got, rec, nil)
		if dropped != 0 {
			t.Fatalf("dropped %d", dropped)
		}
	}
}

func TestMalformedPassesThrough(t *testing.T) {
	t.Parallel()
	okTables := append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldExplicitHashKeyTable, []byte("5"))...)
	okRecord := bytesField(fieldRecords, pbRecord(pkIndex(0), dataField("d")))
	valid := frame(append(append([]byte{}, okTables...), okRecord...))
	badSum := bytes.Clone(valid)
	badSum[len(badSum)-1] ^= 1
	badMagicSum := bytes.Clone(valid)
	badMagicSum[5] ^= 1 // protobuf changed, MD5 not

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"magic only", []byte(magic), ErrChecksum},
		{"shorter than magic and MD5", []byte(magic + "0123456789abcde"), ErrChecksum},
		{"MD5 altered", badSum, ErrChecksum},
		{"protobuf altered", badMagicSum, ErrChecksum},
		{"empty protobuf", frame(nil), ErrProtobuf},
		{"tables but no records", frame(okTables), ErrProtobuf},
		{"truncated varint tag", frame(append(append([]byte{}, okRecord...), 0x80)), ErrProtobuf},
		{"overlong varint", frame(append(append([]byte{}, okRecord...), 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), ErrProtobuf},
		{"length past end", frame(append(append([]byte{}, okRecord...), byte(fieldPartitionKeyTable<<3|2), 10, 'k')), ErrProtobuf},
		{"field number zero", frame(append(append([]byte{}, okRecord...), 0x02, 0x00)), ErrProtobuf},
		{"reserved wire type", frame(append(append([]byte{}, okRecord...), 0x0e)), ErrProtobuf},
		{"stray end group", frame(append(append([]byte{}, okRecord...), 0x2c)), ErrProtobuf},
		{"record truncated varint", frame(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldRecords, []byte{0x08, 0x80})...)), ErrProtobuf},
		{"record missing partition key index", frame(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldRecords, dataField("d"))...)), ErrProtobuf},
		{"record missing data", frame(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldRecords, pkIndex(0))...)), ErrProtobuf},
		{"tag without key", frame(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldRecords, pbRecord(pkIndex(0), dataField("d"), tagField("", "v", false)))...)), ErrProtobuf},
		{"partition key index out of range", frame(append(append([]byte{}, okTables...), bytesField(fieldRecords, pbRecord(pkIndex(1), dataField("d")))...)), ErrIndexRange},
		{"no partition key table", frame(bytesField(fieldRecords, pbRecord(pkIndex(0), dataField("d")))), ErrIndexRange},
		{"huge partition key index", frame(append(append([]byte{}, okTables...), bytesField(fieldRecords, pbRecord(pkIndex(1<<63), dataField("d")))...)), ErrIndexRange},
		{"explicit hash key index out of range", frame(append(append([]byte{}, okTables...), bytesField(fieldRecords, pbRecord(pkIndex(0), ehkIndex(1), dataField("d")))...)), ErrIndexRange},
		{"second record bad", frame(append(append(append([]byte{}, okTables...), okRecord...), bytesField(fieldRecords, pbRecord(pkIndex(3), dataField("d")))...)), ErrIndexRange},
		{"explicit hash key not decimal", frame(append(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldExplicitHashKeyTable, []byte("x1"))...), okRecord...)), ErrHashKey},
		{"explicit hash key over 2^128", frame(append(append(bytesField(fieldPartitionKeyTable, []byte("k")), bytesField(fieldExplicitHashKeyTable, []byte("340282366920938463463374607431768211456"))...), okRecord...)), ErrHashKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := outer(tt.data)
			prior := []UserRecord{{PartitionKey: "earlier"}}
			got := Deaggregate(prior, rec)
			if got[0].PartitionKey != "earlier" {
				t.Fatal("Deaggregate changed records already in dst")
			}
			checkPassedThrough(t, got[1:], rec, tt.want)
			got, dropped := DeaggregateShard(nil, rec, kds.HashKeyRange{})
			checkPassedThrough(t, got, rec, tt.want)
			if dropped != 0 {
				t.Fatalf("dropped %d records of a malformed aggregate", dropped)
			}
		})
	}
	// The valid base of the table decodes.
	if got := Deaggregate(nil, outer(valid)); len(got) != 1 || !got[0].Aggregated || got[0].Err != nil {
		t.Fatalf("valid base: %+v", got)
	}
}

// TestToleratesWhatProtobufAllows: unknown fields of every wire type, known
// numbers with another wire type, tags, repeated scalars (last wins) and
// tables after the records.
func TestToleratesWhatProtobufAllows(t *testing.T) {
	t.Parallel()
	unknown := func() []byte {
		var b []byte
		b = protowire.AppendVarint(protowire.AppendTag(b, 9, protowire.VarintType), 300)
		b = protowire.AppendFixed32(protowire.AppendTag(b, 10, protowire.Fixed32Type), 1)
		b = protowire.AppendFixed64(protowire.AppendTag(b, 11, protowire.Fixed64Type), 1)
		b = protowire.AppendBytes(protowire.AppendTag(b, 12, protowire.BytesType), []byte("x"))
		b = protowire.AppendTag(b, 13, protowire.StartGroupType)
		b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), 1)
		b = protowire.AppendTag(b, 13, protowire.EndGroupType)
		return b
	}
	wrongType := protowire.AppendVarint(protowire.AppendTag(nil, fieldPartitionKeyTable, protowire.VarintType), 7)
	var pb []byte
	pb = append(pb, unknown()...)
	pb = append(pb, bytesField(fieldRecords, pbRecord(unknown(), pkIndex(5), pkIndex(1), dataField("first"), tagField("t", "v", true), ehkIndex(0)))...)
	pb = append(pb, wrongType...)
	pb = append(pb, bytesField(fieldPartitionKeyTable, []byte("k0"))...)
	pb = append(pb, bytesField(fieldRecords, pbRecord(dataField("stale"), pkIndex(0), dataField("second"), unknown()))...)
	pb = append(pb, bytesField(fieldPartitionKeyTable, []byte("k1"))...)
	pb = append(pb, bytesField(fieldExplicitHashKeyTable, []byte("99"))...)
	pb = append(pb, unknown()...)

	got := Deaggregate(nil, outer(frame(pb)))
	want := []UserRecord{
		{PartitionKey: "k1", ExplicitHashKey: "99", Data: []byte("first"), SubSequenceNumber: 0},
		{PartitionKey: "k0", Data: []byte("second"), SubSequenceNumber: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Err != nil || !g.Aggregated || g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey ||
			!bytes.Equal(g.Data, w.Data) || g.SubSequenceNumber != w.SubSequenceNumber || g.SequenceNumber != "4960" ||
			!g.ApproximateArrivalTimestamp.Equal(arrival) {
			t.Fatalf("record %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestKeysDoNotAliasInput: keys stay valid when the caller reuses the
// buffer; Data aliases it by design.
func TestKeysDoNotAliasInput(t *testing.T) {
	t.Parallel()
	var a Aggregator
	_ = a.Add("key-one", "12", []byte("d1"))
	_ = a.Add("key-two", "", []byte("d2"))
	data := a.AppendEncoded(nil)
	got := Deaggregate(nil, outer(data))
	for i := range data {
		data[i] = 0
	}
	if got[0].PartitionKey != "key-one" || got[0].ExplicitHashKey != "12" || got[1].PartitionKey != "key-two" {
		t.Fatalf("keys changed with the input buffer: %+v", got)
	}
}

func TestHashRangeFilter(t *testing.T) {
	t.Parallel()
	half := kds.HashKey{Hi: 1 << 63} // 2^127
	lower := kds.HashKeyRange{Start: kds.HashKey{}, End: half.Sub(kds.HashKey{Lo: 1})}
	upper := kds.HashKeyRange{Start: half, End: kds.MaxHashKey}
	all := kds.HashKeyRange{End: kds.MaxHashKey}

	// Partition keys on both sides of 2^127.
	var low, high string
	for i := 0; low == "" || high == ""; i++ {
		pk := "pk" + string(rune('a'+i))
		if lower.Contains(kds.HashPartitionKey(pk)) {
			low = pk
		} else {
			high = pk
		}
	}
	recs := []userRec{
		{pk: low, data: []byte("0 low by key")},
		{pk: low, ehk: half.String(), data: []byte("1 high by hash key")},
		{pk: high, data: []byte("2 high by key")},
		{pk: high, ehk: "0", data: []byte("3 low by hash key")},
		{pk: low, ehk: maxHashKey, data: []byte("4 high by hash key")},
		{pk: low, data: []byte("5 low by key, hashed before")},
	}
	var a Aggregator
	for _, u := range recs {
		if err := a.Add(u.pk, u.ehk, u.data); err != nil {
			t.Fatal(err)
		}
	}
	rec := outer(a.AppendEncoded(nil))

	tests := []struct {
		name    string
		r       kds.HashKeyRange
		want    []int64 // sub-sequence numbers kept
		dropped int
	}{
		{"lower half", lower, []int64{0, 3, 5}, 3},
		{"upper half", upper, []int64{1, 2, 4}, 3},
		{"whole space", all, []int64{0, 1, 2, 3, 4, 5}, 0},
		{"only max", kds.HashKeyRange{Start: kds.MaxHashKey, End: kds.MaxHashKey}, []int64{4}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped := DeaggregateShard(nil, rec, tt.r)
			if dropped != tt.dropped || len(got) != len(tt.want) {
				t.Fatalf("kept %d dropped %d, want %v dropped %d", len(got), dropped, tt.want, tt.dropped)
			}
			for i, g := range got {
				u := recs[tt.want[i]]
				if g.SubSequenceNumber != tt.want[i] || g.PartitionKey != u.pk || !bytes.Equal(g.Data, u.data) {
					t.Fatalf("kept %+v, want sub-sequence %d", g, tt.want[i])
				}
			}
		})
	}
}

func TestDeaggregateAppends(t *testing.T) {
	t.Parallel()
	var a Aggregator
	_ = a.Add("a1", "", []byte("x"))
	_ = a.Add("a2", "", []byte("y"))
	dst := Deaggregate(make([]UserRecord, 0, 8), outer([]byte("raw")))
	dst = Deaggregate(dst, outer(a.AppendEncoded(nil)))
	if len(dst) != 3 || string(dst[0].Data) != "raw" || dst[2].PartitionKey != "a2" || dst[2].SubSequenceNumber != 1 {
		t.Fatalf("got %+v", dst)
	}
}
