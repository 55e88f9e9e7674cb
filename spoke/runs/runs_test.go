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

func TestGroup(t *testing.T) {
	g := NewWithT(t)
	var grp Group
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = grp.Start(ctx); close(stopped) }()

	// A run reserved before the manager stops is waited for, even when it
	// starts only after the stop began.
	rv, ok := grp.Reserve()
	g.Expect(ok).To(BeTrue())
	cancelled, ok := grp.Reserve()
	g.Expect(ok).To(BeTrue())
	cancelled.Cancel()
	cancelled.Cancel() // a second end is harmless
	stop()
	g.Consistently(stopped).WithTimeout(100 * time.Millisecond).ShouldNot(BeClosed())
	g.Eventually(func() error { return grp.Context().Err() }).Should(HaveOccurred())
	g.Expect(context.Cause(grp.Context())).To(MatchError(ErrStopping))
	ran := make(chan struct{})
	rv.Go(func() { close(ran) })
	g.Eventually(stopped).Should(BeClosed())
	g.Expect(ran).To(BeClosed())

	_, ok = grp.Reserve()
	g.Expect(ok).To(BeFalse(), "nothing starts after the manager stopped")
}
