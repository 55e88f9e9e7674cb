// Package memtest measures the heap in tests that check that memory does
// not grow with the data.
package memtest

import "runtime"

// HeapPeak samples HeapInuse: sampling every so often (every so many items
// or pages) is enough to see growth that scales with the data. Run such a
// test with a low GOGC (debug.SetGCPercent) so that HeapInuse follows what
// is live rather than garbage waiting for the next cycle.
type HeapPeak struct{ base, peak uint64 }

// NewHeapPeak collects garbage and takes the heap in use as the base.
func NewHeapPeak() *HeapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &HeapPeak{base: ms.HeapInuse, peak: ms.HeapInuse}
}

// Sample records the heap in use if it is the highest yet.
func (h *HeapPeak) Sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// Growth is the highest sample less the base.
func (h *HeapPeak) Growth() int64 { return int64(h.peak) - int64(h.base) }
