// Package panics turns a panic in work that reads or writes Blob storage into
// an error, so that the run fails with a reason and the spoke keeps running.
package panics

import (
	"context"
	"fmt"
	"runtime/debug"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Error is a panic that Catch or Call recovered.
type Error struct {
	// Value is what the code passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *Error) Error() string { return fmt.Sprintf("internal error: panic: %v", e.Value) }

// Catch calls fn and returns its error. If fn panics, Catch logs the panic
// with its stack to the context's logger (else controller-runtime's) and
// returns an *Error instead.
func Catch(ctx context.Context, fn func() error) error {
	_, err := Call(ctx, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Call is Catch for a function that returns a value too; after a panic the
// value is T's zero value.
func Call[T any](ctx context.Context, fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			e := &Error{Value: p, Stack: debug.Stack()}
			log.FromContext(ctx).Error(e, "Recovered from a panic", "stack", string(e.Stack))
			v, err = *new(T), e
		}
	}()
	return fn()
}
