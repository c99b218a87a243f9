//go:build unix

package changedetect_test

import "syscall"

// cpuTime returns the CPU time the process has used, user and system, in
// nanoseconds, every thread (the garbage collector's included). Unlike wall
// time it does not count time spent waiting for a busy machine's cores.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
