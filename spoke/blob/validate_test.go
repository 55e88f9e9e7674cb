package blob_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra/entratest"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

func tlsConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// closedPort is a port of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func validate(t *testing.T, cfg blob.Config, opts ...blob.Option) blob.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res := blob.Validate(ctx, cfg, testOptions(opts...)...)
	t.Logf("Validate took %v: %+v", time.Since(start).Round(time.Millisecond), res)
	NewWithT(t).Expect(res.Checked).To(BeTemporally(">=", start))
	return res
}

func TestValidateValidTarget(t *testing.T) {
	g := NewWithT(t)
	container := newContainer(t, "valid")
	id := newIdentity(t, true)
	id.grant(t, container, blobproxy.StorageBlobDataContributor)
	cfg := id.config(container, "team-a/prod")
	log := newRequestLog()
	creds := blob.NewCredentialCache()

	c, err := blob.New(cfg, append(testOptions(), blob.WithTransport(log), blob.WithCredentialCache(creds))...)
	g.Expect(err).NotTo(HaveOccurred())
	res := c.Validate(context.Background())
	g.Expect(res.Valid).To(BeTrue(), res.Message)
	g.Expect(res.Reason).To(Equal(blob.ReasonValidationSucceeded))
	g.Expect(res.Message).To(ContainSubstring("team-a/prod/lifeboat/v1/probes/"))

	// The probe was written, read back and deleted, in that order, under the prefix.
	var probe []string
	for _, r := range log.requests() {
		if strings.Contains(r, "/"+container+"/team-a/prod/lifeboat/v1/probes/") {
			probe = append(probe, strings.Fields(r)[0]+" "+strings.Fields(r)[2])
		}
	}
	g.Expect(probe).To(Equal([]string{"PUT 201", "GET 200", "DELETE 202"}), "requests: %v", log.requests())
	g.Expect(blobsIn(t, container)).To(BeEmpty(), "the probe must not be left behind")

	// Validating again, also with a new Client, reuses the credential and its token.
	c2, err := blob.New(cfg, append(testOptions(), blob.WithTransport(log), blob.WithCredentialCache(creds))...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c2.Validate(context.Background()).Valid).To(BeTrue())
	g.Expect(c.Validate(context.Background()).Valid).To(BeTrue())
	g.Expect(creds.Len()).To(Equal(1))
	g.Expect(azure.entra.TokensIssued(id.app.ClientID)).To(Equal(1))
	g.Expect(blobsIn(t, container)).To(BeEmpty())
}

func TestValidateAuthenticationFailed(t *testing.T) {
	container := newContainer(t, "authn")

	t.Run("no federated credential", func(t *testing.T) {
		g := NewWithT(t)
		id := newIdentity(t, false)
		id.grant(t, container, blobproxy.StorageBlobDataContributor)
		res := validate(t, id.config(container, ""))
		g.Expect(res.Valid).To(BeFalse())
		g.Expect(res.Reason).To(Equal(blob.ReasonAuthenticationFailed))
		g.Expect(res.Message).To(HavePrefix("AADSTS700211: "))
		g.Expect(res.Message).To(ContainSubstring("add a federated credential on the managed identity %s for issuer %s and subject %s",
			id.app.ClientID, id.issuer.URL(), spokeSubject))
	})

	t.Run("federated credential for another subject", func(t *testing.T) {
		g := NewWithT(t)
		id := newIdentity(t, false)
		id.grant(t, container, blobproxy.StorageBlobDataContributor)
		g.Expect(azure.entra.AddFederatedCredential(tenantID, id.app.ClientID, entra.FederatedCredential{
			Issuer: id.issuer.URL(), Subject: "system:serviceaccount:velero:velero",
		})).To(Succeed())
		res := validate(t, id.config(container, ""))
		g.Expect(res.Reason).To(Equal(blob.ReasonAuthenticationFailed))
		g.Expect(res.Message).To(HavePrefix("AADSTS700213: "))
		g.Expect(res.Message).To(ContainSubstring("trusts issuer %s, but not for subject %s", id.issuer.URL(), spokeSubject))
		g.Expect(res.Message).To(ContainSubstring("add a federated credential on the managed identity %s", id.app.ClientID))
	})

	t.Run("unknown client ID", func(t *testing.T) {
		g := NewWithT(t)
		id := newIdentity(t, true)
		cfg := id.config(container, "")
		cfg.ClientID = "00000000-0000-0000-0000-0000000000aa"
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonAuthenticationFailed))
		g.Expect(res.Message).To(HavePrefix("AADSTS700016: "))
		g.Expect(res.Message).To(ContainSubstring("check clientID and tenantID"))
	})
}

func TestValidateAuthorizationFailed(t *testing.T) {
	container := newContainer(t, "authz")

	t.Run("no role assignment", func(t *testing.T) {
		g := NewWithT(t)
		id := newIdentity(t, true)
		res := validate(t, id.config(container, ""))
		g.Expect(res.Reason).To(Equal(blob.ReasonAuthorizationFailed))
		g.Expect(res.Message).To(ContainSubstring("refused reading the container's properties to identity " + id.app.ClientID))
		g.Expect(res.Message).To(ContainSubstring("HTTP 403 AuthorizationPermissionMismatch"))
		g.Expect(res.Message).To(ContainSubstring(`assign the role "Storage Blob Data Contributor" to the identity on container %q`, container))
	})

	t.Run("reader role", func(t *testing.T) {
		g := NewWithT(t)
		id := newIdentity(t, true)
		id.grant(t, container, blobproxy.StorageBlobDataReader)
		res := validate(t, id.config(container, "p"))
		g.Expect(res.Reason).To(Equal(blob.ReasonAuthorizationFailed))
		g.Expect(res.Message).To(ContainSubstring("refused writing the probe blob"))
		g.Expect(res.Message).To(ContainSubstring(`"Storage Blob Data Contributor"`))
		g.Expect(blobsIn(t, container)).To(BeEmpty())
	})
}

func TestValidateContainerNotFound(t *testing.T) {
	g := NewWithT(t)
	id := newIdentity(t, true)
	id.grant(t, "", blobproxy.StorageBlobDataContributor)
	res := validate(t, id.config("no-such-container", ""))
	g.Expect(res.Reason).To(Equal(blob.ReasonContainerNotFound))
	g.Expect(res.Message).To(ContainSubstring(`storage account "devstoreaccount1" has no container "no-such-container"`))
	g.Expect(res.Message).To(ContainSubstring("create the container"))
}

func TestValidateUnreachable(t *testing.T) {
	container := newContainer(t, "unreachable")
	id := newIdentity(t, true)
	id.grant(t, container, blobproxy.StorageBlobDataContributor)

	t.Run("nothing listens at the endpoint", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		cfg.Endpoint = "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/" + azurite.Account
		res := validate(t, cfg, blob.WithAllowedEndpoints(cfg.Endpoint))
		g.Expect(res.Reason).To(Equal(blob.ReasonUnreachable))
		g.Expect(res.Message).To(ContainSubstring("could not reach the blob endpoint " + cfg.Endpoint))
		g.Expect(res.Message).To(ContainSubstring("connection refused"))
	})

	t.Run("nothing listens at the authority", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		cfg.AuthorityHost = "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonUnreachable))
		g.Expect(res.Message).To(ContainSubstring("could not reach the Entra ID authority " + strings.TrimSuffix(cfg.AuthorityHost, "/")))
		g.Expect(res.Message).To(ContainSubstring("connection refused"))
	})

	t.Run("storage behind the proxy is down", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		g.Expect(validate(t, cfg).Valid).To(BeTrue())
		g.Expect(azure.azurite.Stop()).To(Succeed())
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				_ = azure.azurite.Restart(context.Background())
			}
		})
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonUnreachable))
		g.Expect(res.Message).To(ContainSubstring("the blob endpoint " + cfg.Endpoint + " answered HTTP 502 Bad Gateway"))

		g.Expect(azure.azurite.Restart(context.Background())).To(Succeed())
		restarted = true
		g.Expect(validate(t, cfg).Valid).To(BeTrue(), "valid again once storage is back")
	})
}

// A private endpoint the spoke's admin did not allow gets no token: the
// target is refused before any request, to Entra ID or to the endpoint.
func TestValidateEndpointNotAllowed(t *testing.T) {
	g := NewWithT(t)
	id := newIdentity(t, true)
	cfg := id.config("backups", "")
	cfg.Endpoint = "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/" + azurite.Account
	log := newRequestLog()
	res := validate(t, cfg, blob.WithTransport(log))
	g.Expect(res.Valid).To(BeFalse())
	g.Expect(res.Reason).To(Equal(blob.ReasonEndpointNotAllowed))
	g.Expect(res.Message).To(ContainSubstring(cfg.Endpoint + ` is not storage account "devstoreaccount1"'s own blob endpoint`))
	g.Expect(res.Message).To(ContainSubstring("--allowed-blob-endpoint"))
	g.Expect(log.requests()).To(BeEmpty())
	g.Expect(azure.entra.TokensIssued(id.app.ClientID)).To(BeZero())
}

func TestValidateInvalidConfiguration(t *testing.T) {
	id := newIdentity(t, true)
	container := newContainer(t, "config")
	id.grant(t, container, blobproxy.StorageBlobDataContributor)

	t.Run("no token file", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		cfg.TokenFilePath = filepath.Join(t.TempDir(), "azure-identity-token")
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonInvalidConfiguration))
		g.Expect(res.Message).To(ContainSubstring("the service-account token file " + cfg.TokenFilePath + " does not exist"))
	})

	t.Run("token file without a JWT", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		cfg.TokenFilePath = entratest.WriteToken(t, t.TempDir(), "token", "not a token")
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonInvalidConfiguration))
		g.Expect(res.Message).To(ContainSubstring("does not hold a JWT"))
	})

	t.Run("no client ID, none in the environment", func(t *testing.T) {
		g := NewWithT(t)
		t.Setenv(blob.EnvClientID, "")
		cfg := id.config(container, "")
		cfg.ClientID = ""
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonInvalidConfiguration))
		g.Expect(res.Message).To(ContainSubstring("missing ClientID"))
	})

	t.Run("http endpoint", func(t *testing.T) {
		g := NewWithT(t)
		cfg := id.config(container, "")
		cfg.Endpoint = strings.Replace(cfg.Endpoint, "https://", "http://", 1)
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonInvalidConfiguration))
		g.Expect(res.Message).To(ContainSubstring("must be an https URL"))
	})
}

// The client ID, tenant and token file come from the environment when the
// Config leaves them empty, as Azure Workload Identity's webhook sets them.
func TestValidateFromEnvironment(t *testing.T) {
	g := NewWithT(t)
	id := newIdentity(t, true)
	container := newContainer(t, "env")
	id.grant(t, container, blobproxy.StorageBlobDataContributor)
	t.Setenv(blob.EnvClientID, id.app.ClientID)
	t.Setenv(blob.EnvTenantID, tenantID)
	t.Setenv(blob.EnvTokenFile, id.tokenFile)
	t.Setenv(blob.EnvAuthorityHost, azure.entra.AuthorityHost())
	cfg := id.config(container, "")
	cfg.ClientID, cfg.TenantID, cfg.TokenFilePath, cfg.AuthorityHost = "", "", "", ""
	res := validate(t, cfg)
	g.Expect(res.Valid).To(BeTrue(), res.Message)
}

// A Config's Assertion, a source of service-account tokens such as a
// BackupTarget's own ServiceAccount, signs in instead of a token file: it is
// asked for a token when Entra ID needs one, and a source that fails is
// reported with its subject, before any request to Entra ID or storage.
func TestValidateWithAnAssertion(t *testing.T) {
	id := newIdentity(t, true)
	container := newContainer(t, "assertion")
	id.grant(t, container, blobproxy.StorageBlobDataContributor)

	t.Run("valid", func(t *testing.T) {
		g := NewWithT(t)
		var asked atomic.Int32
		cfg := id.config(container, "")
		cfg.TokenFilePath = ""
		cfg.Assertion = &blob.ClientAssertion{Subject: spokeSubject, Token: func(context.Context) (string, error) {
			asked.Add(1)
			b, err := os.ReadFile(id.tokenFile)
			return string(b), err
		}}
		res := validate(t, cfg)
		g.Expect(res.Valid).To(BeTrue(), res.Message)
		g.Expect(asked.Load()).To(BeNumerically(">=", 1))
	})

	t.Run("source fails", func(t *testing.T) {
		g := NewWithT(t)
		issued := azure.entra.TokensIssued(id.app.ClientID)
		cfg := id.config(container, "")
		cfg.Assertion = &blob.ClientAssertion{Subject: "system:serviceaccount:lifeboat-system:lifeboat-target-0123456789abcdef", Token: func(context.Context) (string, error) {
			return "", errors.New(`serviceaccounts "lifeboat-target-0123456789abcdef" not found`)
		}}
		res := validate(t, cfg)
		g.Expect(res.Reason).To(Equal(blob.ReasonInvalidConfiguration))
		g.Expect(res.Message).To(ContainSubstring("could not get a service-account token for subject system:serviceaccount:lifeboat-system:lifeboat-target-0123456789abcdef"))
		g.Expect(res.Message).To(ContainSubstring("not found"))
		g.Expect(azure.entra.TokensIssued(id.app.ClientID)).To(Equal(issued))
	})
}
