package runs

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestRegistry(t *testing.T) {
	g := NewWithT(t)
	var r Registry
	ctx, finish, ok := r.Start(context.Background(), Key("spoke-1", "b1"))
	g.Expect(ok).To(BeTrue())
	g.Expect(r.Running(Key("spoke-1", "b1"))).To(BeTrue())

	_, _, ok = r.Start(context.Background(), Key("spoke-1", "b1"))
	g.Expect(ok).To(BeFalse(), "no duplicate run of the same backup")
	_, finish2, ok := r.Start(context.Background(), Key("spoke-1", "b2"))
	g.Expect(ok).To(BeTrue(), "another backup runs at the same time")
	defer finish2()

	// The run notices the abort and finishes; Abort waits for it.
	go func() {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		finish()
	}()
	g.Expect(r.Abort(context.Background(), Key("spoke-1", "b1"))).To(Succeed())
	g.Expect(errors.Is(context.Cause(ctx), ErrAborted)).To(BeTrue())
	g.Expect(r.Running(Key("spoke-1", "b1"))).To(BeFalse())
	g.Expect(r.Abort(context.Background(), Key("spoke-1", "nothing"))).To(Succeed())
}
