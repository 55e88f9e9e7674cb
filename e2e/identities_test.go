package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// A location whose clusters use two identities, each federated with only
// its own spoke in the Entra stand-in (which allows 20 credentials per
// application): the location is Valid on both spokes, each spoke's
// BackupTarget signs in as its own identity, and the location's status says
// which. Without the mapping spoke-2 could not sign in as spoke-1's identity.
func TestLocationWithTwoIdentities(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure
	spoke1, spoke2 := onboarded()[0], onboarded()[1]
	const team, container = "team-identities", "identities-backups"

	ids := make([]fleet.Identity, 2)
	for i, s := range []*fleet.Spoke{spoke1, spoke2} {
		id, err := az.NewIdentity(uuid.NewString())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(az.Federate(id, s.ControlPlane, backuplocation.FederatedSubject(team, "primary"))).To(Succeed())
		az.Grant(id, container, blobproxy.StorageBlobDataContributor)
		ids[i] = id
	}
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())
	identity := func(id fleet.Identity) backupv1alpha1.AzureWorkloadIdentity {
		return backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID}
	}

	ensureNamespace(g, ctx, hub, team, nil)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: fleet.StorageAccount, Container: container, Prefix: team, Endpoint: az.SpokeBlobEndpoint()},
				Identity: identity(ids[0]),
			},
			Clusters: fleet.ClusterNames(spoke1, spoke2),
			Identities: []fleetv1alpha1.ClusterIdentity{
				{Clusters: fleet.ClusterNames(spoke2), Identity: identity(ids[1])},
			},
		},
	}
	g.Expect(hub.Create(ctx, loc)).To(Succeed())
	waitLocationPhase(g, ctx, loc, fleetv1alpha1.LocationValid)
	g.Expect(connections(g, ctx, loc)).To(ConsistOf(
		And(HaveField("Cluster", spoke1.Name), HaveField("Phase", backupv1alpha1.TargetValid)),
		And(HaveField("Cluster", spoke2.Name), HaveField("Phase", backupv1alpha1.TargetValid)),
	))
	for i, s := range []*fleet.Spoke{spoke1, spoke2} {
		target := &backupv1alpha1.BackupTarget{}
		g.Expect(s.Client.Get(ctx, client.ObjectKey{Name: backuplocation.TargetName(team, loc.Name)}, target)).To(Succeed())
		g.Expect(target.Spec.Identity.ClientID).To(Equal(ids[i].ClientID), "the BackupTarget on %s", s.Name)
		g.Expect(target.Status.Message).To(ContainSubstring(ids[i].ClientID), "%s validated as its own identity", s.Name)
	}
}

// Each BackupTarget signs in as a ServiceAccount of its own, so an identity
// federated for tenant A's location trusts A's target only: tenant B's
// location on the same cluster that names A's identity (and has a role on
// B's container, so that only the federation can stop it) is Invalid, Entra
// having refused the token exchange for B's subject, while A's stays Valid.
// When every target signed in as the spoke's own account, B's was Valid.
func TestIdentityTrustsOnlyItsOwnTarget(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure
	spoke := onboarded()[0]
	const teamA, teamB, containerB = "team-subject-a", "team-subject-b", "subject-b"

	locA, idA := validTeamLocation(g, ctx, teamA, "subject-a", spoke)
	g.Expect(locA.Status.FederatedSubject).To(Equal(backuplocation.FederatedSubject(teamA, locA.Name)))
	g.Expect(az.Entra.FederatedCredentials(fleet.TenantID, idA.ClientID)).To(ConsistOf(HaveField("Subject", locA.Status.FederatedSubject)))
	targetA := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: backuplocation.TargetName(teamA, locA.Name)}, targetA)).To(Succeed())
	g.Expect(targetA.Status.FederatedSubject).To(Equal(locA.Status.FederatedSubject), "the spoke signs in as the subject the hub names")

	az.Grant(idA, containerB, blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, containerB)).To(Succeed())
	locB := createTeamLocation(g, ctx, teamB, containerB, idA, spoke)
	waitLocationPhase(g, ctx, locB, fleetv1alpha1.LocationInvalid)
	subjectB := backuplocation.FederatedSubject(teamB, locB.Name)
	g.Expect(subjectB).NotTo(Equal(locA.Status.FederatedSubject))
	g.Expect(locB.Status.FederatedSubject).To(Equal(subjectB))
	g.Expect(locB.Status.NotValid).To(ConsistOf(And(
		HaveField("Cluster", spoke.Name), HaveField("ClientID", idA.ClientID),
		HaveField("Phase", backupv1alpha1.TargetInvalid), HaveField("Reason", backupv1alpha1.ReasonAuthenticationFailed),
		HaveField("Message", And(ContainSubstring("AADSTS700213"), ContainSubstring(subjectB), ContainSubstring(spoke.Issuer()))),
	)))
	t.Logf("B's location naming A's identity: %s", locB.Status.NotValid[0].Message)

	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(locA), locA)).To(Succeed())
	g.Expect(locA.Status.Phase).To(Equal(fleetv1alpha1.LocationValid), "A's location is untouched")
}
