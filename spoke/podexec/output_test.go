package podexec

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// A command's output is kept up to its bound for the log, whatever it
// writes; the log line says how much there was, and a failure quotes its end.
func TestOutputIsBounded(t *testing.T) {
	g := NewWithT(t)
	b := NewOutput(4 << 10)
	for i := 0; i < 10; i++ {
		n, err := b.Write([]byte(strings.Repeat("x", 1023) + "\n"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(1024), "the command's stream is never cut short")
	}
	g.Expect(b.String()).To(HaveLen(4 << 10))
	g.Expect(b.Describe()).To(Equal(" (first 4096 of 10240 bytes)"))
	g.Expect(b.Excerpt(200)).To(HaveLen(200))

	small := NewOutput(4 << 10)
	small.Write([]byte("frozen\n"))
	g.Expect(small.Describe()).To(Equal(" (7 bytes)"))
	g.Expect(small.Excerpt(200)).To(Equal("frozen\n"))
}
