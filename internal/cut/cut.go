// Package cut shortens text to the bounds an API field or message has.
package cut

import "unicode/utf8"

// Bytes returns s if it is at most n bytes long, else its start, cut on a
// rune boundary, and "...", n bytes at most in all.
func Bytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := max(n-len("..."), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
