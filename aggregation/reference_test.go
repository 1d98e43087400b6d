package aggregation

import (
	"crypto/md5"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The KPL's messages.proto, as a descriptor, so tests can check the
// hand-written wire code against the protobuf library's own encoder.
var aggregatedRecordDesc = func() protoreflect.MessageDescriptor {
	field := func(name string, num int32, label descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label.Enum(), Type: typ.Enum()}
		if msg != "" {
			f.TypeName = proto.String(".kpl." + msg)
		}
		return f
	}
	const (
		req = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED
		opt = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		rep = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		u64 = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("messages.proto"),
		Package: proto.String("kpl"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("AggregatedRecord"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_table", 1, rep, str, ""),
				field("explicit_hash_key_table", 2, rep, str, ""),
				field("records", 3, rep, msg, "Record"),
			}},
			{Name: proto.String("Tag"), Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, req, str, ""),
				field("value", 2, opt, str, ""),
			}},
			{Name: proto.String("Record"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_index", 1, req, u64, ""),
				field("explicit_hash_key_index", 2, opt, u64, ""),
				field("data", 3, req, byt, ""),
				field("tags", 4, rep, msg, "Tag"),
			}},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic(err)
	}
	return file.Messages().ByName("AggregatedRecord")
}()

// refRecord is a user record as the reference encoder sees it; ehk < 0 is none.
type refRecord struct {
	pk, ehk int
	data    []byte
}

// refEncode builds an aggregated record with the protobuf library.
func refEncode(t testing.TB, pks, ehks []string, recs []refRecord) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(aggregatedRecordDesc)
	fields := aggregatedRecordDesc.Fields()
	pkList := m.Mutable(fields.ByNumber(1)).List()
	for _, pk := range pks {
		pkList.Append(protoreflect.ValueOfString(pk))
	}
	ehkList := m.Mutable(fields.ByNumber(2)).List()
	for _, ehk := range ehks {
		ehkList.Append(protoreflect.ValueOfString(ehk))
	}
	recList := m.Mutable(fields.ByNumber(3)).List()
	recDesc := fields.ByNumber(3).Message()
	for _, r := range recs {
		rm := dynamicpb.NewMessage(recDesc)
		rm.Set(recDesc.Fields().ByNumber(1), protoreflect.ValueOfUint64(uint64(r.pk)))
		if r.ehk >= 0 {
			rm.Set(recDesc.Fields().ByNumber(2), protoreflect.ValueOfUint64(uint64(r.ehk)))
		}
		rm.Set(recDesc.Fields().ByNumber(3), protoreflect.ValueOfBytes(r.data))
		recList.Append(protoreflect.ValueOfMessage(rm))
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return frame(pb)
}

// frame wraps protobuf bytes in magic and MD5.
func frame(pb []byte) []byte {
	sum := md5.Sum(pb)
	out := append([]byte(magic), pb...)
	return append(out, sum[:]...)
}
