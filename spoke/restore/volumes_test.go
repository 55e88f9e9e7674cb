package restore

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A claim whose data the backup holds is created without its old volume
// (whose PersistentVolume is left out) and filled before the workloads are
// written; a fill that fails is an error, so the restore is not a success.
func TestClaimWithDataIsFilledBeforeWorkloads(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	pv := item(rVolumes, "", "vd-data", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"vd-data","uid":"u1"},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain","storageClassName":"",
		"hostPath":{"path":"/tmp/source-cluster-disk"},"claimRef":{"kind":"PersistentVolumeClaim","namespace":"vd","name":"data","uid":"old-claim-uid","apiVersion":"v1"}}}`)
	pvc := item(rClaims, "vd", "data", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"vd","uid":"old-claim-uid"},
		"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"","volumeName":"vd-data","resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Bound"}}`)
	dep := item(rDeployments, "vd", "app", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"app","namespace":"vd","uid":"d1"},
		"spec":{"replicas":0,"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"a"}},
		"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"data"}}]}}}}`)
	snap := archive.VolumeSnapshot{Namespace: "vd", Claim: "data", Snapshot: "k0123", Repository: "lifeboat/v1/repositories/spoke-1/vd/", Bytes: 42, Files: 1}
	store, dir := writeBackup(t, []archive.Item{ns("vd"), pv, pvc, dep}, snap)

	for _, tc := range []struct {
		to   string
		fill error
	}{{"vd-filled", nil}, {"vd-broken", errors.New("the mover pod did not start")}} {
		var log logLines
		opts := options(openBackup(t, store, dir), &log)
		opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"vd": backupv1alpha1.NamespaceName(tc.to)}
		var calls []string
		opts.FillVolume = func(ctx context.Context, v archive.VolumeSnapshot, namespace, name string) error {
			g.Expect(v).To(Equal(snap))
			claim := getJSON(t, ctx, rClaims, namespace, name)
			g.Expect(claim).NotTo(BeNil(), "the claim exists when it is filled")
			g.Expect(str(claim, "spec", "volumeName")).NotTo(Equal("vd-data"), "not the source cluster's volume")
			g.Expect(getJSON(t, ctx, rDeployments, namespace, "app")).To(BeNil(), "no workload before its data")
			calls = append(calls, namespace+"/"+name)
			return tc.fill
		}
		res, err := Run(ctx, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(calls).To(Equal([]string{tc.to + "/data"}))
		g.Expect(getJSON(t, ctx, rDeployments, tc.to, "app")).NotTo(BeNil(), "log:\n%s", &log)
		g.Expect(getJSON(t, ctx, rVolumes, "", "vd-data") == nil).To(BeTrue(), "the source cluster's volume is left out; log:\n%s", &log)
		if tc.fill == nil {
			g.Expect(res.Errors).To(BeZero(), "log:\n%s", &log)
			g.Expect(log.about(archive.LevelInfo, pvc.Ref())).To(ContainElement(ContainSubstring("restored from snapshot k0123")))
		} else {
			g.Expect(res.Errors).To(BeNumerically(">", 0))
			g.Expect(log.about(archive.LevelError, pvc.Ref())).To(ContainElement(ContainSubstring("the mover pod did not start")))
		}
	}
}
