package targets_test

import (
	"context"
	"flag"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// The admin's --allowed-blob-endpoint is what lets a target name a private
// endpoint; any other is refused as EndpointNotAllowed, before a token is
// even minted.
func TestAllowedEndpoints(t *testing.T) {
	g := NewWithT(t)
	var f targets.Factory
	fs := flag.NewFlagSet("spoke", flag.ContinueOnError)
	fs.Var(&f.AllowedEndpoints, "allowed-blob-endpoint", "")
	g.Expect(fs.Parse([]string{
		"--allowed-blob-endpoint=https://10.0.0.5:10000/acct",
		"--allowed-blob-endpoint=https://acct.blob.private.example/, https://10.0.0.6/acct",
	})).To(Succeed())
	g.Expect(f.AllowedEndpoints).To(Equal(targets.Endpoints{"https://10.0.0.5:10000/acct", "https://acct.blob.private.example/", "https://10.0.0.6/acct"}))
	for _, bad := range []string{"http://10.0.0.5/acct", "10.0.0.5:10000", "https://user@10.0.0.5/acct", "https://10.0.0.5/acct?sig=x", ""} {
		g.Expect(new(targets.Endpoints).Set(bad)).NotTo(Succeed(), bad)
	}

	// No ServiceAccount exists for the target: a validation that gets past the
	// endpoint check stops at minting its token.
	tokens := kubefake.NewClientset()
	tokens.PrependReactor("create", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "lifeboat-target-0123456789abcdef")
	})
	f.Tokens = tokens
	target := func(endpoint string) *backupv1alpha1.BackupTarget {
		bt := &backupv1alpha1.BackupTarget{}
		bt.Spec.Azure = backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Endpoint: endpoint}
		bt.Spec.Identity = backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}
		return bt
	}
	for endpoint, reason := range map[string]string{
		"https://10.0.0.5:10000/acct":             blob.ReasonInvalidConfiguration, // allowed: it gets as far as the missing ServiceAccount
		"https://acct.blob.private.example":       blob.ReasonInvalidConfiguration,
		"https://acct.blob.core.windows.net":      blob.ReasonInvalidConfiguration,
		"https://10.0.0.7:10000/acct":             blob.ReasonEndpointNotAllowed,
		"https://acct.blob.private.example/other": blob.ReasonEndpointNotAllowed,
	} {
		res := f.Validate(context.Background(), target(endpoint))
		g.Expect(res.Reason).To(Equal(reason), "%s: %s", endpoint, res.Message)
		if reason == blob.ReasonInvalidConfiguration {
			g.Expect(res.Message).To(ContainSubstring("could not get a service-account token for subject system:serviceaccount:lifeboat-system:lifeboat-target-"), endpoint)
			g.Expect(res.Message).To(ContainSubstring("not found"), endpoint)
		}
	}
}
