package state

import "syscall"

// dropResident unmaps the pages of [addr, addr+size) of a shared, read-only
// file mapping from the process; their next read maps them again from the
// page cache.
func dropResident(addr uintptr, size int64) error {
	if size <= 0 {
		return nil
	}
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
