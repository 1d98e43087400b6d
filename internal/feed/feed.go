package feed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ksp-project/ksp/producer"
)

// Input is one source of records.
type Input struct {
	Name string // for messages: a file name, or "-" for stdin
	R    io.Reader
}

// Options say how inputs become records.
type Options struct {
	// Delimiter separates records; "" means "\n" (a trailing "\r" is then
	// dropped too). Empty chunks are skipped but counted.
	Delimiter string
	// Whole makes each input one record.
	Whole bool
	// Key picks partition keys; nil means Random.
	Key Keyer
	// SkipBad reports bad items to Warn and skips them; otherwise the first
	// bad item fails Put before anything is put.
	SkipBad bool
	// Warn receives one line per skipped item (nil: discarded).
	Warn io.Writer
}

// ItemError is an item whose key could not be made.
type ItemError struct {
	Source string
	Line   int
	Err    error
}

func (e *ItemError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Source, e.Line, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// maxItem bounds one chunk: Kinesis takes at most 10 MiB per record.
const maxItem = 10 << 20

// Summary counts what Put did.
type Summary struct {
	Records        int64 // user records put
	Skipped        int64 // bad items skipped
	Failed         int64 // user records that failed
	KinesisRecords int64 // Kinesis records (aggregates count once)
	Retries        int64 // user records sent again after a failure
}

// Put reads every input, makes records and puts them through p, then
// waits for their results. It does not close p.
func Put(ctx context.Context, p *producer.Producer, inputs []Input, opts Options) (Summary, error) {
	if opts.Key == nil {
		opts.Key = Random()
	}
	if opts.Warn == nil {
		opts.Warn = io.Discard
	}
	before := p.Stats()
	t := tally{p: p}
	if opts.SkipBad {
		err := scanAll(inputs, opts, func(it Item) error {
			r, err := record(opts.Key, it)
			if err != nil {
				fmt.Fprintln(opts.Warn, "skipped", err)
				t.sum.Skipped++
				return nil
			}
			return t.put(ctx, r)
		})
		if err != nil {
			return t.sum, err
		}
	} else {
		// Check everything first, so that a bad item puts nothing.
		var records []producer.Record
		err := scanAll(inputs, opts, func(it Item) error {
			r, err := record(opts.Key, it)
			records = append(records, r)
			return err
		})
		if err != nil {
			return t.sum, err
		}
		for _, r := range records {
			if err := t.put(ctx, r); err != nil {
				return t.sum, err
			}
		}
	}
	if err := t.settle(ctx, true); err != nil {
		return t.sum, err
	}
	after := p.Stats()
	t.sum.KinesisRecords = after.KinesisRecordsPut - before.KinesisRecordsPut
	t.sum.Retries = after.Retries - before.Retries
	if t.sum.Failed > 0 {
		return t.sum, fmt.Errorf("%d of %d records failed, the first with: %w", t.sum.Failed, t.sum.Failed+t.sum.Records, t.firstErr)
	}
	return t.sum, nil
}

// record makes an item's record, or an *ItemError saying why it cannot.
func record(k Keyer, it Item) (producer.Record, error) {
	key, err := k.Key(it)
	if err == nil && (key == "" || utf8.RuneCountInString(key) > 256) {
		err = fmt.Errorf("partition key %q is not 1 to 256 characters", key)
	}
	if err != nil {
		return producer.Record{}, &ItemError{Source: it.Source, Line: it.Line, Err: err}
	}
	return producer.Record{PartitionKey: key, Data: it.Data}, nil
}

// tally puts records and counts their results.
type tally struct {
	p        *producer.Producer
	pending  []*producer.Pending
	sum      Summary
	firstErr error
}

// settleEvery bounds the handles kept between settles.
const settleEvery = 4096

func (t *tally) put(ctx context.Context, r producer.Record) error {
	h, err := t.p.Put(ctx, r)
	if err != nil {
		return err
	}
	t.pending = append(t.pending, h)
	if len(t.pending) >= settleEvery {
		return t.settle(ctx, false)
	}
	return nil
}

// settle counts the results that are in; with wait, it waits for all.
func (t *tally) settle(ctx context.Context, wait bool) error {
	if wait {
		if err := t.p.Flush(ctx); err != nil {
			return err
		}
	}
	left := t.pending[:0]
	for _, h := range t.pending {
		res, ok := h.Result()
		if !ok && wait {
			var err error
			if res, err = h.Wait(ctx); err != nil && res.Err == nil {
				return err
			}
			ok = true
		}
		switch {
		case !ok:
			left = append(left, h)
		case res.Err != nil:
			t.sum.Failed++
			if t.firstErr == nil {
				t.firstErr = res.Err
			}
		default:
			t.sum.Records++
		}
	}
	clear(t.pending[len(left):])
	t.pending = left
	return nil
}

// scanAll splits every input into items and calls fn for each non-empty one.
func scanAll(inputs []Input, opts Options, fn func(Item) error) error {
	for _, in := range inputs {
		if err := scan(in, opts, fn); err != nil {
			return err
		}
	}
	return nil
}

func scan(in Input, opts Options, fn func(Item) error) error {
	if opts.Whole {
		data, err := io.ReadAll(io.LimitReader(in.R, maxItem+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", in.Name, err)
		}
		if len(data) > maxItem {
			return &ItemError{Source: in.Name, Line: 1, Err: fmt.Errorf("larger than %d bytes", maxItem)}
		}
		return fn(Item{Source: in.Name, Line: 1, Data: data})
	}
	delim := opts.Delimiter
	if delim == "" {
		delim = "\n"
	}
	sc := bufio.NewScanner(in.R)
	sc.Buffer(make([]byte, 64<<10), maxItem+len(delim))
	sc.Split(splitOn([]byte(delim)))
	line := 0
	for sc.Scan() {
		line++
		data := sc.Bytes()
		if delim == "\n" {
			data = bytes.TrimSuffix(data, []byte("\r"))
		}
		if len(data) == 0 {
			continue
		}
		// The scanner reuses its buffer; the producer keeps Data until the result.
		if err := fn(Item{Source: in.Name, Line: line, Data: bytes.Clone(data)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &ItemError{Source: in.Name, Line: line + 1, Err: fmt.Errorf("longer than %d bytes", maxItem)}
		}
		return fmt.Errorf("reading %s: %w", in.Name, err)
	}
	return nil
}

// splitOn is a bufio.SplitFunc for records ending in delim (the last may
// lack it).
func splitOn(delim []byte) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.Index(data, delim); i >= 0 {
			return i + len(delim), data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}
