package cut

import (
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
)

func TestBytes(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Bytes("short", 10)).To(Equal("short"))
	g.Expect(Bytes("0123456789ab", 10)).To(Equal("0123456..."))
	// A rune is never split: é is two bytes.
	s := Bytes(strings.Repeat("é", 10), 10)
	g.Expect(utf8.ValidString(s)).To(BeTrue())
	g.Expect(len(s)).To(BeNumerically("<=", 10))
	g.Expect(s).To(Equal("ééé..."))
}
