// Package eventstest reads the Events recorded about an object, for tests.
package eventstest

import (
	"context"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Of lists the events.k8s.io Events regarding obj (by name and UID).
func Of(ctx context.Context, c client.Reader, obj client.Object) []eventsv1.Event {
	list := &eventsv1.EventList{}
	if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == obj.GetName() && e.Regarding.UID == obj.GetUID() {
			out = append(out, e)
		}
	}
	return out
}

// Notes returns a function listing the notes of obj's Events with reason.
func Notes(c client.Reader, obj client.Object, reason string) func() []string {
	return func() []string {
		var out []string
		for _, e := range Of(context.Background(), c, obj) {
			if e.Reason == reason {
				out = append(out, e.Note)
			}
		}
		return out
	}
}
