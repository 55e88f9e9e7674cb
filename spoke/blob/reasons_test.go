package blob_test

import (
	"testing"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// The reasons are the spoke API's, which the package repeats to stay free of Kubernetes modules.
func TestReasonsMatchTheAPI(t *testing.T) {
	for ours, api := range map[string]string{
		blob.ReasonAuthenticationFailed: backupv1alpha1.ReasonAuthenticationFailed,
		blob.ReasonAuthorizationFailed:  backupv1alpha1.ReasonAuthorizationFailed,
		blob.ReasonContainerNotFound:    backupv1alpha1.ReasonContainerNotFound,
		blob.ReasonUnreachable:          backupv1alpha1.ReasonUnreachable,
		blob.ReasonInvalidConfiguration: backupv1alpha1.ReasonInvalidConfiguration,
		blob.ReasonEndpointNotAllowed:   backupv1alpha1.ReasonEndpointNotAllowed,
		blob.ReasonValidationSucceeded:  backupv1alpha1.ReasonValidationSucceeded,
	} {
		if ours != api {
			t.Errorf("reason %q differs from the API's %q", ours, api)
		}
	}
	for ours, api := range map[blob.Cloud]backupv1alpha1.AzureCloud{
		blob.AzurePublic:       backupv1alpha1.AzurePublic,
		blob.AzureChina:        backupv1alpha1.AzureChina,
		blob.AzureUSGovernment: backupv1alpha1.AzureUSGovernment,
	} {
		if string(ours) != string(api) {
			t.Errorf("cloud %q differs from the API's %q", ours, api)
		}
	}
}
