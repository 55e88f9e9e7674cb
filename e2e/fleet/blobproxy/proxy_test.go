/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package blobproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra/entratest"
)

const tenantID = "6f2b1c3a-2a4e-4c4e-9d55-0d8f4f6b2a11"

// identity is one workload: an app registration trusting one service account.
type identity struct {
	app   entra.Application
	cred  *azidentity.WorkloadIdentityCredential
	blobs *azblob.Client
}

type fleet struct {
	az    *azurite.Azurite
	idp   *entra.Server
	iss   *entratest.Issuer
	proxy *blobproxy.Proxy
}

func startFleet(t *testing.T, ctx context.Context) *fleet {
	t.Helper()
	g := NewWithT(t)
	az, err := azurite.Start(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = az.Stop() })

	idp, err := entra.New()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(idp.Start()).To(Succeed())
	t.Cleanup(func() { _ = idp.Close() })
	iss := entratest.NewIssuer(t, false)
	g.Expect(idp.TrustIssuerCA(iss.URL(), iss.CACertPEM())).To(Succeed())

	proxy, err := blobproxy.New(az.URL(), az.CAPool(), idp.Verifier())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(proxy.Start()).To(Succeed())
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetLogger(func(s string) { t.Log(s) })
	return &fleet{az: az, idp: idp, iss: iss, proxy: proxy}
}

// identity registers clientID with a federated credential for the service
// account sa and returns an azblob client that reaches storage through the
// proxy with a real WorkloadIdentityCredential.
func (f *fleet) identity(t *testing.T, clientID, sa string) *identity {
	t.Helper()
	g := NewWithT(t)
	app, err := f.idp.AddApplication(tenantID, clientID)
	g.Expect(err).NotTo(HaveOccurred())
	subject := "system:serviceaccount:lifeboat-system:" + sa
	g.Expect(f.idp.AddFederatedCredential(tenantID, clientID, entra.FederatedCredential{Issuer: f.iss.URL(), Subject: subject})).To(Succeed())
	tokenFile := entratest.WriteToken(t, t.TempDir(), "token", f.iss.Token(subject, []string{entra.DefaultAudience}, time.Hour))
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientID: clientID, TenantID: tenantID, TokenFilePath: tokenFile,
		ClientOptions:            f.idp.ClientOptions(),
		DisableInstanceDiscovery: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	return &identity{app: app, cred: cred, blobs: f.client(t, cred)}
}

func (f *fleet) client(t *testing.T, cred azcore.TokenCredential) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClient(f.proxy.AccountURL(azurite.Account), cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: f.proxy.HTTPClient(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return c
}

func download(ctx context.Context, c *azblob.Client, container, blob string) ([]byte, error) {
	resp, err := c.DownloadStream(ctx, container, blob, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func denied(err error) bool { return bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch) }

func TestStorageThroughTheProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleet(t, ctx)
	writer := f.identity(t, "0b5a7f3e-9c1d-4d2b-8f0e-3b1f6c2d9e44", "spoke-a")
	reader := f.identity(t, "1c6b8a4f-0d2e-4e3c-9a1f-4c2a7d3e0f55", "spoke-b")
	outsider := f.identity(t, "2d7c9b5a-1e3f-4f4d-8b2a-5d3b8e4f1a66", "spoke-c")
	// The writer is granted by object id, the reader by client id; both work as in Azure.
	f.proxy.Grant(writer.app.ObjectID, azurite.Account, "cluster-a", blobproxy.StorageBlobDataContributor)
	f.proxy.Grant(reader.app.ClientID, azurite.Account, "cluster-a", blobproxy.StorageBlobDataReader)

	payload := make([]byte, 9<<20+123)
	_, _ = rand.Read(payload)

	t.Run("a contributor creates its container and writes and reads blobs", func(t *testing.T) {
		g := NewWithT(t)
		_, err := writer.blobs.CreateContainer(ctx, "cluster-a", nil)
		g.Expect(err).NotTo(HaveOccurred())
		// Staged in 4 MiB blocks, streamed through the proxy.
		_, err = writer.blobs.UploadStream(ctx, "cluster-a", "backups/b1/resources.tar.zst", bytes.NewReader(payload),
			&blockblob.UploadStreamOptions{BlockSize: 4 << 20, Concurrency: 2})
		g.Expect(err).NotTo(HaveOccurred())
		got, err := download(ctx, writer.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Equal(got, payload)).To(BeTrue(), "downloaded %d bytes, uploaded %d", len(got), len(payload))

		pager := writer.blobs.NewListBlobsFlatPager("cluster-a", nil)
		page, err := pager.NextPage(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(page.Segment.BlobItems).To(HaveLen(1))
		g.Expect(*page.Segment.BlobItems[0].Name).To(Equal("backups/b1/resources.tar.zst"))
	})

	t.Run("a container-scoped contributor cannot create other containers or list the account", func(t *testing.T) {
		g := NewWithT(t)
		_, err := writer.blobs.CreateContainer(ctx, "cluster-b", nil)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
		_, err = writer.blobs.NewListContainersPager(nil).NextPage(ctx)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
		// Get Account Information needs only some assignment in the account.
		_, err = writer.blobs.ServiceClient().GetAccountInfo(ctx, nil)
		g.Expect(err).NotTo(HaveOccurred())
	})

	t.Run("a reader reads but does not write or delete", func(t *testing.T) {
		g := NewWithT(t)
		got, err := download(ctx, reader.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(HaveLen(len(payload)))
		_, err = reader.blobs.UploadBuffer(ctx, "cluster-a", "backups/b1/backup.json", []byte("{}"), nil)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
		_, err = reader.blobs.DeleteBlob(ctx, "cluster-a", "backups/b1/resources.tar.zst", nil)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
	})

	t.Run("an identity without a role assignment is refused everything", func(t *testing.T) {
		g := NewWithT(t)
		_, err := download(ctx, outsider.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
		var re *azcore.ResponseError
		g.Expect(errors.As(err, &re)).To(BeTrue())
		g.Expect(re.StatusCode).To(Equal(http.StatusForbidden))
		_, err = outsider.blobs.ServiceClient().GetAccountInfo(ctx, nil)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
		_, err = outsider.blobs.CreateContainer(ctx, "cluster-c", nil)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
	})

	t.Run("assignments take effect at once and can be revoked", func(t *testing.T) {
		g := NewWithT(t)
		f.proxy.Grant(outsider.app.ObjectID, azurite.Account, "", blobproxy.StorageBlobDataReader)
		page, err := outsider.blobs.NewListContainersPager(nil).NextPage(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, c := range page.ContainerItems {
			names = append(names, *c.Name)
		}
		g.Expect(names).To(ContainElement("cluster-a"))
		f.proxy.Revoke(outsider.app.ObjectID, azurite.Account, "", blobproxy.StorageBlobDataReader)
		_, err = outsider.blobs.NewListContainersPager(nil).NextPage(ctx)
		g.Expect(denied(err)).To(BeTrue(), "error: %v", err)
	})

	t.Run("refusals look like Azure Storage's", func(t *testing.T) {
		g := NewWithT(t)
		tok, err := outsider.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
		g.Expect(err).NotTo(HaveOccurred())
		req, _ := http.NewRequest(http.MethodGet, f.proxy.AccountURL(azurite.Account)+"/cluster-a/backups/b1/resources.tar.zst", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("x-ms-version", "2025-11-05")
		resp, err := f.proxy.HTTPClient().Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
		g.Expect(resp.Header.Get("x-ms-error-code")).To(Equal("AuthorizationPermissionMismatch"))
		g.Expect(resp.Header.Get("x-ms-request-id")).NotTo(BeEmpty())
		g.Expect(string(body)).To(MatchRegexp(`^<\?xml version="1.0" encoding="utf-8"\?><Error><Code>AuthorizationPermissionMismatch</Code>` +
			`<Message>This request is not authorized to perform this operation using this permission.\nRequestId:[0-9a-f-]{36}\nTime:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z</Message></Error>$`))

		req.Header.Del("Authorization")
		resp, err = f.proxy.HTTPClient().Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		g.Expect(resp.Header.Get("x-ms-error-code")).To(Equal("NoAuthenticationInformation"))
		g.Expect(resp.Header.Get("WWW-Authenticate")).To(ContainSubstring("resource_id=https://storage.azure.com"))
	})

	t.Run("tokens Azurite would accept are refused unless Entra signed them for storage", func(t *testing.T) {
		g := NewWithT(t)
		now := time.Now()
		forged := entratest.NewIssuer(t, false).Sign(jwt.MapClaims{
			"iss": "https://sts.windows.net/" + tenantID + "/", "aud": "https://storage.azure.com", "tid": tenantID,
			"appid": writer.app.ClientID, "oid": writer.app.ObjectID, "sub": writer.app.ObjectID,
			"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		// Azurite itself takes the forged token ...
		direct, err := azblob.NewClient(f.az.URL(), staticToken(forged), &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: f.az.HTTPClient()}})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = download(ctx, direct, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(err).NotTo(HaveOccurred())
		// ... the proxy does not: the signature is not Entra's.
		_, err = download(ctx, f.client(t, staticToken(forged)), "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(bloberror.HasCode(err, bloberror.InvalidAuthenticationInfo)).To(BeTrue(), "error: %v", err)
		g.Expect(err.Error()).To(ContainSubstring("Signature validation failed"))

		// A genuine token for another resource is refused too.
		vault, err := writer.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = download(ctx, f.client(t, staticToken(vault.Token)), "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(bloberror.HasCode(err, bloberror.InvalidAuthenticationInfo)).To(BeTrue(), "error: %v", err)
		g.Expect(err.Error()).To(ContainSubstring("Audience validation failed"))
	})

	t.Run("storage is unreachable while Azurite is down and back after a restart", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(f.az.Stop()).To(Succeed())
		_, err := download(ctx, writer.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		var re *azcore.ResponseError
		g.Expect(errors.As(err, &re)).To(BeTrue(), "error: %v", err)
		g.Expect(re.StatusCode).To(Equal(http.StatusBadGateway))
		g.Expect(f.az.Restart(ctx)).To(Succeed())
		got, err := download(ctx, writer.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(HaveLen(len(payload)))
	})

	t.Run("a contributor deletes blobs", func(t *testing.T) {
		g := NewWithT(t)
		_, err := writer.blobs.DeleteBlob(ctx, "cluster-a", "backups/b1/resources.tar.zst", nil)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = download(ctx, writer.blobs, "cluster-a", "backups/b1/resources.tar.zst")
		g.Expect(bloberror.HasCode(err, bloberror.BlobNotFound)).To(BeTrue(), "error: %v", err)
	})
}

// staticToken is a credential that hands out one fixed bearer token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}
