package state

// ReleaseMemory gives back the memory that reads of the state file hold in
// this process. bbolt reads the file through a memory map, and every page
// a read touches stays mapped in the process, counted in its RSS, for as
// long as the store is open: one read of the whole id map (run's DN index
// at start, 100 000 mappings) leaves most of the file resident, about
// 45 MiB at 100 000, though the process never reads most of those pages
// again. ReleaseMemory unmaps them from the process (madvise
// MADV_DONTNEED on the mapping, Linux; elsewhere it does nothing): the
// file's contents do not change, the pages stay in the kernel's page
// cache, and the next read of one maps it again from there.
//
// It runs inside a read transaction, which keeps bbolt from remapping the
// file meanwhile.
func (s *Store) ReleaseMemory() error {
	return s.View(func(t *Tx) error { return t.ReleaseMemory() })
}

// ReleaseMemory is Store.ReleaseMemory within a transaction: a long read
// (Range over the whole id map) calls it every so many records, so that
// the pages it has read so far do not pile up in the process; the pages
// it reads next, and those a cursor is on, are mapped again as they are
// read.
func (t *Tx) ReleaseMemory() error {
	defer storeOp()
	return dropResident(t.tx.DB().Info().Data, t.tx.Size())
}
