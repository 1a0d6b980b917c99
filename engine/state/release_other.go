//go:build !linux

package state

// dropResident does nothing where madvise's MADV_DONTNEED is not known to
// leave a shared file mapping's contents as they are.
func dropResident(uintptr, int64) error { return nil }
