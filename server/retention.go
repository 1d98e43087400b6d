package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/kds"
)

type retentionInput struct {
	streamRef
	RetentionPeriodHours *integer `json:"RetentionPeriodHours"`
}

func (r *retentionInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("retentionPeriodHours", r.RetentionPeriodHours != nil) {
		v.intRange("retentionPeriodHours", int64(*r.RetentionPeriodHours), 1, 8760)
	}
}

func increaseRetention(s *Server, c *call) (any, error) { return changeRetention(s, c, true) }
func decreaseRetention(s *Server, c *call) (any, error) { return changeRetention(s, c, false) }

func changeRetention(s *Server, c *call, increase bool) (any, error) {
	req, err := decodeRequest[retentionInput](c)
	if err != nil {
		return nil, err
	}
	hours := int(*req.RetentionPeriodHours)
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	return s.updateSettings(st, func(set *streamSettings) error {
		switch {
		case hours < kds.MinRetentionHours:
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", kds.MinRetentionHours, hours)
		case hours > kds.MaxRetentionHours:
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", kds.MaxRetentionHours, hours)
		case increase && hours < set.retentionHours:
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", hours, st.name, set.retentionHours)
		case !increase && hours > set.retentionHours:
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", hours, st.name, set.retentionHours)
		}
		set.retentionHours = hours
		return nil
	})
}

// retentionLoop runs EnforceRetention every interval until Close.
func (s *Server) retentionLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.EnforceRetention(); err != nil {
				s.log.Warn("enforcing retention", "err", err)
			}
		case <-s.closing:
			return
		}
	}
}

// EnforceRetention applies every stream's retention period now: records
// that arrived before now − retention are trimmed from the shard logs (the
// disk store trims whole segments, so it may keep some older records a
// while longer), which moves TRIM_HORIZON; and closed shards that closed
// before now − retention expire: ListShards and DescribeStream stop listing
// them and GetShardIterator answers ResourceNotFoundException, as on AWS.
// The background loop (Options.RetentionInterval) calls it; tests may too.
func (s *Server) EnforceRetention() error {
	now := s.now().UnixMilli()
	s.mu.RLock()
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.RUnlock()
	var (
		errs    []error
		expired = map[*stream][]*shard{}
	)
	for _, st := range streams {
		st.mu.RLock()
		horizon := now - int64(st.retentionHours)*3600_000
		live := st.status == statusActive || st.status == statusUpdating
		shards := append([]*shard(nil), st.shards...)
		st.mu.RUnlock()
		if !live {
			continue // being created or deleted
		}
		for _, sh := range shards {
			if sh.expired.Load() {
				continue
			}
			if _, err := sh.log.TrimBefore(horizon); err != nil {
				errs = append(errs, fmt.Errorf("stream %s shard %s: %w", st.name, sh.id, err))
				continue
			}
			sh.appendMu.Lock()
			gone := sh.closed && sh.closedMs < horizon
			sh.appendMu.Unlock()
			if gone {
				expired[st] = append(expired[st], sh)
				s.log.Info("closed shard expired", "stream", st.name, "shard_id", sh.id)
			}
		}
	}
	if len(expired) > 0 {
		if err := s.expireShards(expired); err != nil {
			errs = append(errs, fmt.Errorf("saving metadata: %w", err))
		}
	}
	return errors.Join(errs...)
}

// liveShards wraps a shard filter so that it also drops expired shards.
func liveShards(keep func(*shard) bool) func(*shard) bool {
	return func(sh *shard) bool { return !sh.expired.Load() && keep(sh) }
}

// expireShards marks closed shards expired: persisted first, published after
// (a failed save leaves them as they were; the next round tries again).
func (s *Server) expireShards(expired map[*stream][]*shard) error {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	prepared := make(map[*stream]streamMeta, len(expired))
	for st, shards := range expired {
		st.mu.RLock()
		m := st.metaLocked(st.streamSettings)
		st.mu.RUnlock()
		for _, sh := range shards {
			m.Shards[sh.idx].Expired = true
		}
		prepared[st] = m
	}
	if err := s.persist(s.streamList(), prepared); err != nil {
		return err
	}
	for _, shards := range expired {
		for _, sh := range shards {
			sh.expired.Store(true)
		}
	}
	return nil
}
