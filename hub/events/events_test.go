package events

import (
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// A note longer than the API's 1 KiB is cut on a character boundary, so the
// Event is still recorded; a nil recorder records nothing.
func TestRecordCutsLongNotes(t *testing.T) {
	g := NewWithT(t)
	rec := events.NewFakeRecorder(1)
	long := strings.Repeat("é", 700) // 1,400 bytes
	Record(rec, &fleetv1alpha1.Backup{}, corev1.EventTypeWarning, "BackupFailed", "Backup", long)
	e := <-rec.Events
	note := strings.TrimPrefix(e, "Warning BackupFailed ")
	g.Expect(len(note)).To(BeNumerically("<=", maxNote))
	g.Expect(utf8.ValidString(note)).To(BeTrue())
	g.Expect(note).To(HaveSuffix("é..."))
	Record(nil, &fleetv1alpha1.Backup{}, corev1.EventTypeNormal, "X", "Y", "no recorder, no panic")
}
