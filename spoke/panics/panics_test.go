package panics_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/spoke/panics"
)

func TestCatch(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	g.Expect(panics.Catch(ctx, func() error { return nil })).To(Succeed())
	failed := errors.New("failed")
	g.Expect(panics.Catch(ctx, func() error { return failed })).To(MatchError(failed))

	err := panics.Catch(ctx, func() error {
		var parts []string
		_ = parts[3] // what azblob's challenge parser did with a short authorization_uri
		return nil
	})
	var pe *panics.Error
	g.Expect(errors.As(err, &pe)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(HavePrefix("internal error: panic: runtime error: index out of range [3]"))
	g.Expect(string(pe.Stack)).To(ContainSubstring("panics_test.TestCatch"))

	g.Expect(panics.Catch(ctx, func() error { panic(nil) })).To(MatchError(ContainSubstring("panic called with nil argument")))
}

func TestCall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(panics.Call(ctx, func() (int, error) { return 7, nil })).To(Equal(7))
	n, err := panics.Call(ctx, func() (int, error) { panic("broken") })
	g.Expect(n).To(BeZero())
	g.Expect(err).To(MatchError("internal error: panic: broken"))
}
