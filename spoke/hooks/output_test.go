package hooks

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// An action's output is kept up to MaxOutput bytes for the log, whatever it
// writes; the log line says how much there was, and a failure quotes its end.
func TestOutputIsBounded(t *testing.T) {
	g := NewWithT(t)
	b := &boundedBuffer{max: MaxOutput}
	for i := 0; i < 10; i++ {
		n, err := b.Write([]byte(strings.Repeat("x", 1023) + "\n"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(1024), "the command's stream is never cut short")
	}
	g.Expect(b.String()).To(HaveLen(MaxOutput))
	g.Expect(b.describe()).To(Equal(" (first 4096 of 10240 bytes)"))
	g.Expect(b.excerpt(maxExcerpt)).To(HaveLen(maxExcerpt))

	small := &boundedBuffer{max: MaxOutput}
	small.Write([]byte("frozen\n"))
	g.Expect(small.describe()).To(Equal(" (7 bytes)"))
	g.Expect(small.excerpt(maxExcerpt)).To(Equal("frozen\n"))
}
