package store

// SyncRounds returns how many fsync rounds the commit path of d has run.
func SyncRounds(d *Disk) int64 { return d.syncs.Load() }
