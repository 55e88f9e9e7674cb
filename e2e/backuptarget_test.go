package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
)

func backupTarget(name, container string, id fleet.Identity) *backupv1alpha1.BackupTarget {
	return &backupv1alpha1.BackupTarget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure: backupv1alpha1.AzureBlobLocation{
				StorageAccount: fleet.StorageAccount, Container: container, Prefix: "e2e",
				Endpoint: testFleet.Azure.SpokeBlobEndpoint(),
			},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
		}},
	}
}

// waitValidated waits until the spoke manager has validated target and returns its state.
func waitValidated(g Gomega, ctx context.Context, c client.Client, name string) backupv1alpha1.ValidationState {
	t := &backupv1alpha1.BackupTarget{}
	g.Eventually(func() bool {
		g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, t)).To(Succeed())
		return t.Status.LastValidationTime != nil && t.Status.ObservedGeneration == t.Generation
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "target %s gets validated", name)
	return t.Status.ValidationState
}

// The spoke manager validates BackupTargets with the target's own Workload
// Identity and explains every failure with a reason and the fix.
func TestBackupTargetValidation(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	az, spoke1, spoke2 := testFleet.Azure, testFleet.Spokes[0], testFleet.Spokes[1]

	id, err := az.NewIdentity("7d0c1f3a-2b4e-4c6d-8e9f-0a1b2c3d4e01")
	g.Expect(err).NotTo(HaveOccurred())
	// Federated for its targets on spoke-1; spoke-2 has no federated credential.
	for _, target := range []string{"valid", "no-container"} {
		g.Expect(az.Federate(id, spoke1.ControlPlane, backupv1alpha1.TargetSubject(target))).To(Succeed())
	}
	az.Grant(id, "targets", blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, "targets")).To(Succeed())

	// A role on a container that does not exist, so that storage answers ContainerNotFound.
	az.Grant(id, "does-not-exist", blobproxy.StorageBlobDataContributor)

	unauthorized, err := az.NewIdentity("7d0c1f3a-2b4e-4c6d-8e9f-0a1b2c3d4e02")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(unauthorized, spoke1.ControlPlane, backupv1alpha1.TargetSubject("no-role"))).To(Succeed())

	cases := []struct {
		name      string
		spoke     *fleet.Spoke
		target    *backupv1alpha1.BackupTarget
		phase     backupv1alpha1.TargetPhase
		reason    string
		inMessage []string
	}{
		{"valid on spoke-1", spoke1, backupTarget("valid", "targets", id), backupv1alpha1.TargetValid, backupv1alpha1.ReasonValidationSucceeded, nil},
		{"no federated credential on spoke-2", spoke2, backupTarget("valid", "targets", id), backupv1alpha1.TargetInvalid, backupv1alpha1.ReasonAuthenticationFailed,
			[]string{"AADSTS700211", "federated credential", spoke2.Issuer(), backupv1alpha1.TargetSubject("valid")}},
		{"identity without a role", spoke1, backupTarget("no-role", "targets", unauthorized), backupv1alpha1.TargetInvalid, backupv1alpha1.ReasonAuthorizationFailed,
			[]string{"Storage Blob Data Contributor"}},
		{"missing container", spoke1, backupTarget("no-container", "does-not-exist", id), backupv1alpha1.TargetInvalid, backupv1alpha1.ReasonContainerNotFound,
			[]string{"does-not-exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tc.spoke.Client.Create(ctx, tc.target)).To(Succeed())
			st := waitValidated(g, ctx, tc.spoke.Client, tc.target.Name)
			t.Logf("%s on %s: %s %s: %s", tc.target.Name, tc.spoke.Name, st.Phase, st.Reason, st.Message)
			g.Expect(st.Phase).To(Equal(tc.phase))
			g.Expect(st.Reason).To(Equal(tc.reason))
			for _, s := range tc.inMessage {
				g.Expect(st.Message).To(ContainSubstring(s))
			}
		})
	}

	// Azurite down: Unreachable, naming the endpoint; back up: Valid again on
	// the next validation (a spec change triggers one at once).
	g.Expect(az.Azurite.Stop()).To(Succeed())
	defer func() {
		if !az.Azurite.Running() { // the test failed with Azurite down: later tests need it
			_ = az.Azurite.Restart(context.Background())
		}
	}()
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: "valid"}, target)).To(Succeed())
	target.Spec.ValidationInterval = &metav1.Duration{Duration: 2 * time.Minute}
	g.Expect(spoke1.Client.Update(ctx, target)).To(Succeed())
	st := waitValidated(g, ctx, spoke1.Client, "valid")
	t.Logf("valid on spoke-1 with Azurite stopped: %s %s: %s", st.Phase, st.Reason, st.Message)
	g.Expect(st.Reason).To(Equal(backupv1alpha1.ReasonUnreachable))
	g.Expect(st.Message).To(ContainSubstring(az.SpokeBlobEndpoint()), "the message names the endpoint")

	g.Expect(az.Azurite.Restart(ctx)).To(Succeed())
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: "valid"}, target)).To(Succeed())
	target.Spec.ValidationInterval = &metav1.Duration{Duration: time.Hour}
	g.Expect(spoke1.Client.Update(ctx, target)).To(Succeed())
	g.Expect(waitValidated(g, ctx, spoke1.Client, "valid").Phase).To(Equal(backupv1alpha1.TargetValid))
}
