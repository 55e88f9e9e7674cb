package main

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		want     int64
		wantSome bool
	}{
		{"90% of the container's limit", map[string]string{memoryLimitEnv: "536870912"}, 483183819, true},
		{"GOMEMLIMIT wins", map[string]string{memoryLimitEnv: "536870912", "GOMEMLIMIT": "300MiB"}, 0, false},
		{"no limit known", map[string]string{}, 0, false},
		{"not a number", map[string]string{memoryLimitEnv: "512Mi"}, 0, false},
		{"zero", map[string]string{memoryLimitEnv: "0"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := softMemoryLimit(func(k string) string { return tc.env[k] })
			g.Expect(ok).To(Equal(tc.wantSome))
			g.Expect(got).To(Equal(tc.want))
		})
	}
}
