package store

import "time"

// SyncRounds returns how many fsync rounds the commit path of d has run.
func SyncRounds(d *Disk) int64 { return d.syncs.Load() }

// FileSyncs returns how many files the commit path of d has fdatasynced.
func FileSyncs(d *Disk) int64 { return d.fileSyncs.Load() }

// CommitsRequested returns how many Commit calls d has counted.
func CommitsRequested(d *Disk) uint64 {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	return d.requested
}

// CommitsStarted returns how many Commit calls the rounds begun so far
// cover, and whether a round is writing now.
func CommitsStarted(d *Disk) (uint64, bool) {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	return d.started, d.flushing
}

// SyncTime returns how long the commit path of d has spent in fsync rounds.
func SyncTime(d *Disk) time.Duration { return time.Duration(d.syncNanos.Load()) }
