// Command lifeboat-podprobe runs in a pod on a fleet node and reports, one
// JSON line each, whether it reached its own API server through in-cluster
// config and each URL it was given, verifying TLS with the given CA files.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Result is what the probe prints for each check.
type Result struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Status int    `json:"status,omitempty"`
	User   string `json:"user,omitempty"`
	Error  string `json:"error,omitempty"`
}

type urls []string

func (u *urls) String() string     { return strings.Join(*u, ",") }
func (u *urls) Set(s string) error { *u = append(*u, s); return nil }

func main() {
	var gets urls
	var caDir string
	var sleep bool
	var azureScope string
	flag.StringVar(&azureScope, "azure-scope", "", "get an Azure token for this scope with Workload Identity (the environment the webhook injected); the Entra CA is CA-DIR/entra.crt")
	flag.Var(&gets, "get", "NAME=URL to GET (repeatable); the CA is CA-DIR/NAME.crt")
	flag.StringVar(&caDir, "ca-dir", "/probe-ca", "directory of the CA files, one per NAME")
	flag.BoolVar(&sleep, "sleep", false, "stay up after the checks (for exec)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out := json.NewEncoder(os.Stdout)
	_ = out.Encode(inCluster(ctx))
	for _, g := range gets {
		name, u, _ := strings.Cut(g, "=")
		_ = out.Encode(get(ctx, name, u, caDir+"/"+name+".crt"))
	}
	if azureScope != "" {
		_ = out.Encode(azureToken(ctx, azureScope, caDir+"/entra.crt"))
	}
	if sleep {
		select {}
	}
}

// inCluster asks the API server who the pod's service account is.
func inCluster(ctx context.Context) Result {
	r := Result{Check: "in-cluster"}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.OK, r.User = true, review.Status.UserInfo.Username
	return r
}

// azureToken exchanges the projected token for an Azure token the standard
// azidentity way: everything from the environment the webhook injected.
func azureToken(ctx context.Context, scope, caFile string) Result {
	r := Result{Check: "azure-token"}
	for _, env := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"} {
		if os.Getenv(env) == "" {
			r.Error = env + " is not set"
			return r
		}
	}
	httpc, err := trusting(caFile)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Transport: httpc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		r.Error = err.Error()
		return r
	}
	r.OK, r.User = true, os.Getenv("AZURE_CLIENT_ID")
	return r
}

// trusting is an HTTP client that trusts only the CA in caFile.
func trusting(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// get GETs u trusting only the CA in caFile; any HTTP answer counts as reached.
func get(ctx context.Context, name, u, caFile string) Result {
	r := Result{Check: name}
	c, err := trusting(caFile)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp, err := c.Do(req)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp.Body.Close()
	r.OK, r.Status = true, resp.StatusCode
	return r
}
