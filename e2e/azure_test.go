package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
)

var storageScope = policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}}

// A spoke's projected service-account token, minted by its real kube-apiserver,
// is exchanged for a storage token through azidentity's Workload Identity
// credential, and that token reads and writes blobs through the authorizing proxy.
func TestWorkloadIdentityReachesBlobStorage(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	az, spoke1, spoke2 := testFleet.Azure, testFleet.Spokes[0], testFleet.Spokes[1]

	// The token file holds what the kubelet would project: a TokenRequest token
	// for the spoke manager's service account with the Azure audience.
	raw, err := os.ReadFile(spoke1.TokenFile.Path)
	g.Expect(err).NotTo(HaveOccurred())
	claims := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(string(raw), claims)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims["iss"]).To(Equal(spoke1.Issuer()))
	g.Expect(claims["sub"]).To(Equal("system:serviceaccount:lifeboat-system:lifeboat-spoke"))
	g.Expect(claims["aud"]).To(ConsistOf(fleet.WorkloadIdentityAudience))

	id, err := az.NewIdentity("0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(id, spoke1.ControlPlane, spoke1.TokenFile.Subject)).To(Succeed())
	az.Grant(id, "fleet-backups", blobproxy.StorageBlobDataContributor)

	cred, err := az.Credential(id, spoke1.TokenFile.Path)
	g.Expect(err).NotTo(HaveOccurred())
	blob, err := az.BlobClient(cred)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = blob.CreateContainer(ctx, "fleet-backups", nil)
	g.Expect(err).NotTo(HaveOccurred())
	payload := make([]byte, 3<<20+17) // more than one block
	_, _ = rand.Read(payload)
	_, err = blob.UploadBuffer(ctx, "fleet-backups", "probe/payload.bin", payload, nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := blob.DownloadStream(ctx, "fleet-backups", "probe/payload.bin", nil)
	g.Expect(err).NotTo(HaveOccurred())
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Equal(got, payload)).To(BeTrue(), "downloaded bytes equal uploaded bytes")
	g.Expect(az.Entra.TokensIssued(id.ClientID)).To(BeNumerically(">=", 1))

	// The same client ID with spoke-2's token: no federated credential trusts
	// spoke-2's issuer, so Entra refuses the exchange.
	cred2, err := az.Credential(id, spoke2.TokenFile.Path)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cred2.GetToken(ctx, storageScope)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("AADSTS700211"), "no federated identity record for spoke-2's issuer")

	// An identity that signs in fine but has no role on the container gets 403.
	other, err := az.NewIdentity("0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d02")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(other, spoke1.ControlPlane, spoke1.TokenFile.Subject)).To(Succeed())
	otherCred, err := az.Credential(other, spoke1.TokenFile.Path)
	g.Expect(err).NotTo(HaveOccurred())
	otherBlob, err := az.BlobClient(otherCred)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = otherBlob.UploadBuffer(ctx, "fleet-backups", "probe/intruder.bin", []byte("no"), nil)
	g.Expect(bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch)).To(BeTrue(), "got %v", err)
	_, err = otherBlob.DownloadStream(ctx, "fleet-backups", "probe/payload.bin", nil)
	g.Expect(bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch)).To(BeTrue(), "got %v", err)
}

// The token file is refreshed before it expires, as the kubelet refreshes a
// projected token.
func TestTokenFileIsRefreshed(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := testFleet.Spokes[0]
	path := t.TempDir() + "/token"
	// 10 minutes is the shortest lifetime the TokenRequest API grants; 80% of it
	// is too long for a test, so read the schedule from the first token instead.
	tf, err := fleet.StartTokenFile(ctx, s.ControlPlane, fleet.SpokeNamespace, fleet.SpokeServiceAccount, fleet.WorkloadIdentityAudience, path, 10*time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	defer tf.Stop()
	g.Expect(tf.Rotations()).To(Equal(1))
	g.Expect(tf.NextRefresh()).To(BeTemporally("~", time.Now().Add(8*time.Minute), 30*time.Second))
	first, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(tf.Refresh(ctx)).To(Succeed())
	second, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tf.Rotations()).To(Equal(2))
	g.Expect(second).NotTo(Equal(first), "a refresh writes a new token")
}
