// Package bench holds benchmarks of the lifeboat-hub binary as a whole, run as
// a process against a real hub control plane (see docs/benchmarks.md). It has
// no code of its own: everything is in its _test.go files, and nothing runs
// unless a benchmark is selected with -bench.
package bench
