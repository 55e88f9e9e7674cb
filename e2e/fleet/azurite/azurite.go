/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/

// Package azurite runs Azurite's blob service for the test fleet: over HTTPS
// with a certificate of our own CA, path-style URLs, and bearer tokens checked
// in "basic" OAuth mode (issuer https://sts.windows.net/..., audience
// https://storage.azure.com, lifetime; not the signature, which the
// authorizing proxy in front of it checks).
package azurite

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// Azurite's built-in account, the only one it serves without extra configuration.
const (
	Account    = "devstoreaccount1"
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlbo8YJeG9a5vYqIJRr7ro+Cei8k1zEIGnJKQ4K2C3fQxfIaDkBiwgoHtszeg=="
)

const (
	// startTimeout bounds Azurite's start: node loads it in seconds on an
	// idle machine, and took more than 60 s at load 5 (a 5,000-cluster
	// benchmark beside it).
	startTimeout = 3 * time.Minute
	stopGrace    = 5 * time.Second
)

// Azurite is a running Azurite blob service.
type Azurite struct {
	dir      string
	port     int
	ca       *pki.CA
	certFile string
	keyFile  string

	mu   sync.Mutex
	proc *proc.Process
}

// Start runs the cached azurite-blob (hack/fleet-bin.sh azurite) on a free
// port of 127.0.0.1, keeping its data, certificate and log in dir, and waits
// until it answers over HTTPS.
func Start(ctx context.Context, dir string) (*Azurite, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("lifeboat-azurite-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.Serving("azurite")
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := kp.Write(dir, "azurite")
	if err != nil {
		return nil, err
	}
	if _, err := ca.WriteCA(dir, "azurite-ca"); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	a := &Azurite{dir: dir, port: port, ca: ca, certFile: certFile, keyFile: keyFile}
	if err := a.run(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Azurite) run(ctx context.Context) error {
	bin, err := assets.Path("azurite-blob")
	if err != nil {
		return err
	}
	args := []string{
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(a.port),
		"--location", filepath.Join(a.dir, "data"),
		"--oauth", "basic",
		"--cert", a.certFile,
		"--key", a.keyFile,
		"--skipApiVersionCheck",
		"--loose",
		"--disableProductStyleUrl",
		"--disableTelemetry",
	}
	p, err := proc.Start("azurite", a.dir, bin, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := p.WaitFor(ctx, "azurite to answer on "+a.Endpoint(), a.ping); err != nil {
		_ = p.Stop(stopGrace)
		return err
	}
	a.mu.Lock()
	a.proc = p
	a.mu.Unlock()
	return nil
}

// ping succeeds when Azurite answers an HTTPS request with a certificate of our CA.
func (a *Azurite) ping() error {
	c := a.HTTPClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(a.URL() + "?comp=list")
	if err != nil {
		return err
	}
	resp.Body.Close()
	// Without a token Azurite refuses; any answer means it is serving.
	return nil
}

// Endpoint is https://127.0.0.1:PORT.
func (a *Azurite) Endpoint() string { return "https://127.0.0.1:" + strconv.Itoa(a.port) }

// URL is the path-style URL of the built-in account, https://127.0.0.1:PORT/devstoreaccount1.
func (a *Azurite) URL() string { return a.Endpoint() + "/" + Account }

// Port is the port Azurite listens on; it stays the same across Restart.
func (a *Azurite) Port() int { return a.port }

// CACertPEM is the CA of Azurite's serving certificate.
func (a *Azurite) CACertPEM() []byte { return a.ca.CertPEM() }

// CAPool trusts Azurite's serving certificate.
func (a *Azurite) CAPool() *x509.CertPool { return a.ca.Pool() }

// HTTPClient is a client trusting Azurite, usable as an azcore Transport.
func (a *Azurite) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: a.CAPool(), MinVersion: tls.VersionTLS12}},
	}
}

// AdminClient reaches Azurite directly, beside the authorizing proxy, as
// the storage account's owner: to create and inspect containers. Its token is
// of the shape Azurite's basic OAuth mode accepts (it refuses the account key
// in that mode and checks no signature), signed by a throwaway key.
func (a *Azurite) AdminClient() (*azblob.Client, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	const tenant = "0c6a5e2b-9d7f-4a41-8e3b-2f1d6c8a4b90"
	now := time.Now()
	token, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://sts.windows.net/" + tenant + "/", "aud": "https://storage.azure.com", "tid": tenant,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"appid": "5d0e8b7c-3a2f-4c19-b6e4-7f1a9c2d8e35", "oid": "8a4c2e1f-6b3d-4f7a-9c05-1e2d3b4a5c6f",
	}).SignedString(key)
	if err != nil {
		return nil, err
	}
	return azblob.NewClient(a.URL(), ownerToken(token), &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: a.HTTPClient()}})
}

// ownerToken hands out AdminClient's one token.
type ownerToken string

func (t ownerToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(t), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// LogFile is Azurite's output (its access log).
func (a *Azurite) LogFile() string { return filepath.Join(a.dir, "azurite.log") }

// Stop ends Azurite's process group and waits until its port is free. Data stays in dir.
func (a *Azurite) Stop() error {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.Stop(stopGrace); err != nil {
		return err
	}
	return waitPortFree(a.port, 10*time.Second)
}

// Restart stops Azurite and starts it again on the same port with the same
// data, for tests in which storage is unreachable for a while.
func (a *Azurite) Restart(ctx context.Context) error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.run(ctx)
}

// Running reports whether the Azurite process is up.
func (a *Azurite) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return false
	}
	select {
	case <-a.proc.Exited():
		return false
	default:
		return true
	}
}

func waitPortFree(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("azurite: port %d still in use after stop: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
