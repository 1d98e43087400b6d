package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// A shard iterator is base64(version | created ms | issued ms | shard index |
// position | stream name | HMAC-SHA256[:16] of the rest). The key is the
// server's, kept in its metadata, so iterators survive a restart of a durable
// server and cannot be forged or edited.
type iterator struct {
	stream   string
	created  int64
	issued   int64
	shardIdx int
	position uint64
}

const iteratorVersion = 1

var errBadIterator = errors.New("invalid shard iterator")

func (s *Server) encodeIterator(it iterator) string {
	b := make([]byte, 0, 1+8+8+4+8+len(it.stream)+16)
	b = append(b, iteratorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(it.created))
	b = binary.BigEndian.AppendUint64(b, uint64(it.issued))
	b = binary.BigEndian.AppendUint32(b, uint32(it.shardIdx))
	b = binary.BigEndian.AppendUint64(b, it.position)
	b = append(b, it.stream...)
	mac := hmac.New(sha256.New, s.iterKey)
	mac.Write(b)
	b = mac.Sum(b)[:len(b)+16]
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Server) decodeIterator(text string) (iterator, error) {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) < 1+8+8+4+8+1+16 || b[0] != iteratorVersion {
		return iterator{}, errBadIterator
	}
	body, sum := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, s.iterKey)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil)[:16], sum) {
		return iterator{}, errBadIterator
	}
	return iterator{
		created:  int64(binary.BigEndian.Uint64(body[1:])),
		issued:   int64(binary.BigEndian.Uint64(body[9:])),
		shardIdx: int(binary.BigEndian.Uint32(body[17:])),
		position: binary.BigEndian.Uint64(body[21:]),
		stream:   string(body[29:]),
	}, nil
}
