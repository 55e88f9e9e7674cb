package main

import (
	"os"
	"runtime/debug"
	"strconv"
)

// memoryLimitEnv is the container's memory limit in bytes; the chart sets
// it from the downward API (resourceFieldRef limits.memory).
const memoryLimitEnv = "LIFEBOAT_MEMORY_LIMIT"

// softMemoryLimit is the Go garbage collector's soft memory limit for a
// container limited to $LIFEBOAT_MEMORY_LIMIT bytes: 90% of it, leaving
// room for what the runtime does not count. None when GOMEMLIMIT is set
// (the runtime takes it) or the limit is unknown.
//
// Without it the heap may grow to twice the live heap before a collection
// (GOGC=100). kopia keeps up to 128 MiB of pack buffers alive between runs
// and a restore allocates about two bytes per byte it reads, so a restore's
// heap doubles a live heap that is mostly those buffers
// (docs/benchmarks.md); with the limit the collector works harder instead
// of letting the pod run out of memory.
func softMemoryLimit(getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit, err := strconv.ParseInt(getenv(memoryLimitEnv), 10, 64)
	if err != nil || limit <= 0 {
		return 0, false
	}
	return limit / 10 * 9, true
}

// setSoftMemoryLimit applies softMemoryLimit and returns it, or 0.
func setSoftMemoryLimit() int64 {
	limit, ok := softMemoryLimit(os.Getenv)
	if !ok {
		return 0
	}
	debug.SetMemoryLimit(limit)
	return limit
}
