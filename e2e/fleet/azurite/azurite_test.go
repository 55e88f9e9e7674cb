/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package azurite

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
)

// staticToken is a credential that hands out one fixed bearer token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// token is an access token of the shape Azurite's basic OAuth mode accepts; it
// is signed by a throwaway key, since Azurite does not check signatures.
func token(t *testing.T, aud string) staticToken {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tid := "6f2b1c3a-2a4e-4c4e-9d55-0d8f4f6b2a11"
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://sts.windows.net/" + tid + "/", "aud": aud, "tid": tid,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"appid": "0b5a7f3e-9c1d-4d2b-8f0e-3b1f6c2d9e44", "oid": "3c9d1a52-7e0b-4f6a-8d21-5b4e9f0c7a13",
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return staticToken(s)
}

func client(t *testing.T, a *Azurite, cred azcore.TokenCredential) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClient(a.URL(), cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: a.HTTPClient(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func processGroupGone(pid int) bool {
	return errors.Is(syscall.Kill(-pid, 0), syscall.ESRCH)
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestAzuriteServesBlobsOverHTTPSWithBearerTokensAndKeepsDataAcrossRestart(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := Start(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = a.Stop() })
	g.Expect(a.URL()).To(Equal("https://127.0.0.1:" + strconv.Itoa(a.Port()) + "/devstoreaccount1"))
	g.Expect(a.Running()).To(BeTrue())

	c := client(t, a, token(t, "https://storage.azure.com"))
	_, err = c.CreateContainer(ctx, "backups", nil)
	g.Expect(err).NotTo(HaveOccurred())
	payload := []byte("lifeboat backup bytes")
	_, err = c.UploadBuffer(ctx, "backups", "a/b/backup.json", payload, nil)
	g.Expect(err).NotTo(HaveOccurred())

	// Basic OAuth mode is on: a token for another audience and no token at all are refused.
	_, err = client(t, a, token(t, "https://vault.azure.net")).CreateContainer(ctx, "nope", nil)
	g.Expect(err).To(HaveOccurred())
	var re *azcore.ResponseError
	g.Expect(errors.As(err, &re)).To(BeTrue())
	// Azurite answers 403 AuthenticationFailed where Azure answers 401 InvalidAuthenticationInfo.
	g.Expect(re.StatusCode).To(Equal(http.StatusForbidden))
	g.Expect(re.ErrorCode).To(Equal("AuthenticationFailed"))
	// The owner's client works beside the tenants' tokens.
	admin, err := a.AdminClient()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = admin.CreateContainer(ctx, "by-the-owner", nil)
	g.Expect(err).NotTo(HaveOccurred())

	anon, err := a.HTTPClient().Get(a.URL() + "/backups/a/b/backup.json")
	g.Expect(err).NotTo(HaveOccurred())
	anon.Body.Close()
	g.Expect(anon.StatusCode).To(BeNumerically(">=", 400))

	pid := a.proc.Pid()
	g.Expect(a.Restart(ctx)).To(Succeed())
	g.Expect(processGroupGone(pid)).To(BeTrue(), "the old process group is gone")
	g.Expect(a.proc.Pid()).NotTo(Equal(pid))

	resp, err := c.DownloadStream(ctx, "backups", "a/b/backup.json", nil)
	g.Expect(err).NotTo(HaveOccurred(), "data survives a restart on the same URL")
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(payload))

	_, err = c.DownloadStream(ctx, "backups", "missing", nil)
	g.Expect(bloberror.HasCode(err, bloberror.BlobNotFound)).To(BeTrue(), "error: %v", err)

	pid = a.proc.Pid()
	g.Expect(a.Stop()).To(Succeed())
	g.Expect(a.Running()).To(BeFalse())
	g.Expect(processGroupGone(pid)).To(BeTrue())
	g.Expect(portFree(a.Port())).To(BeTrue())
	_, err = c.UploadBuffer(ctx, "backups", "after-stop", bytes.Repeat([]byte("x"), 10), nil)
	g.Expect(err).To(HaveOccurred(), "a stopped Azurite is unreachable")
	g.Expect(a.Stop()).To(Succeed(), "stopping twice is fine")
}
