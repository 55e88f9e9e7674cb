package discovery

import (
	"testing"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFromGardener(t *testing.T) {
	g := NewWithT(t)
	s := shoot(gardencorev1beta1.LastOperationTypeReconcile, gardencorev1beta1.LastOperationStateSucceeded)
	s.Status.AdvertisedAddresses = []gardencorev1beta1.ShootAdvertisedAddress{
		{Name: "internal", URL: "https://internal"}, {Name: "external", URL: "https://api.app.prod"},
	}
	got := FromGardener(s)
	g.Expect(got).To(Equal(Shoot{
		Project: "prod", Name: "app", ClusterName: "prod--app",
		Seed: "azure-we", Provider: "azure", Region: "westeurope",
		Labels: map[string]string{"team": "a"}, APIServer: "https://api.app.prod", Ready: true,
	}))
}

func TestReadiness(t *testing.T) {
	const (
		create    = gardencorev1beta1.LastOperationTypeCreate
		reconcile = gardencorev1beta1.LastOperationTypeReconcile
		migrate   = gardencorev1beta1.LastOperationTypeMigrate
	)
	for _, tc := range []struct {
		name    string
		shoot   *gardencorev1beta1.Shoot
		reason  string
		message string
	}{
		{name: "created", shoot: shoot(create, gardencorev1beta1.LastOperationStateSucceeded)},
		{name: "reconciled", shoot: shoot(reconcile, gardencorev1beta1.LastOperationStateSucceeded)},
		{name: "reconciling after success", shoot: shoot(reconcile, gardencorev1beta1.LastOperationStateProcessing)},
		{name: "creating", shoot: shoot(create, gardencorev1beta1.LastOperationStateProcessing),
			reason: NotReadyLastOperation, message: "last operation Create Processing 40%: working"},
		{name: "create failed", shoot: shoot(create, gardencorev1beta1.LastOperationStateFailed),
			reason: NotReadyLastOperation, message: "last operation Create Failed 40%: working"},
		{name: "reconcile failed", shoot: shoot(reconcile, gardencorev1beta1.LastOperationStateFailed),
			reason: NotReadyLastOperation, message: "last operation Reconcile Failed 40%: working"},
		{name: "migrating", shoot: shoot(migrate, gardencorev1beta1.LastOperationStateProcessing),
			reason: NotReadyLastOperation, message: "last operation Migrate Processing 40%: working"},
		{name: "new", shoot: func() *gardencorev1beta1.Shoot { s := shoot(create, ""); s.Status.LastOperation = nil; return s }(),
			reason: NotReadyNotReconciled, message: "not reconciled by Gardener yet"},
		{name: "hibernated", shoot: hibernated(shoot(reconcile, gardencorev1beta1.LastOperationStateSucceeded), true, true),
			reason: NotReadyHibernated, message: "hibernated"},
		{name: "hibernating", shoot: hibernated(shoot(reconcile, gardencorev1beta1.LastOperationStateProcessing), true, false),
			reason: NotReadyHibernated, message: "being hibernated"},
		{name: "waking up", shoot: hibernated(shoot(reconcile, gardencorev1beta1.LastOperationStateProcessing), false, true),
			reason: NotReadyHibernated, message: "waking up from hibernation"},
		{name: "deleting", shoot: func() *gardencorev1beta1.Shoot {
			s := shoot(reconcile, gardencorev1beta1.LastOperationStateSucceeded)
			s.DeletionTimestamp = &metav1.Time{}
			return s
		}(), reason: NotReadyBeingDeleted, message: "being deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := FromGardener(tc.shoot)
			g.Expect(got.Ready).To(Equal(tc.reason == ""))
			g.Expect(got.NotReadyReason).To(Equal(tc.reason))
			g.Expect(got.NotReadyMessage).To(Equal(tc.message))
			g.Expect(got.Deleting).To(Equal(tc.reason == NotReadyBeingDeleted))
			g.Expect(got.Hibernated).To(Equal(tc.reason == NotReadyHibernated))
		})
	}
}

func shoot(typ gardencorev1beta1.LastOperationType, state gardencorev1beta1.LastOperationState) *gardencorev1beta1.Shoot {
	return &gardencorev1beta1.Shoot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "garden-prod", Name: "app", Labels: map[string]string{"team": "a"}},
		Spec: gardencorev1beta1.ShootSpec{
			Region:   "westeurope",
			Provider: gardencorev1beta1.Provider{Type: "azure"},
		},
		Status: gardencorev1beta1.ShootStatus{
			SeedName: new("azure-we"),
			LastOperation: &gardencorev1beta1.LastOperation{
				Type: typ, State: state, Progress: 40, Description: "working",
			},
		},
	}
}

func hibernated(s *gardencorev1beta1.Shoot, enabled, is bool) *gardencorev1beta1.Shoot {
	s.Spec.Hibernation = &gardencorev1beta1.Hibernation{Enabled: new(enabled)}
	s.Status.IsHibernated = is
	return s
}
