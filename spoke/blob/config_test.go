package blob

import (
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestConfigDefaults(t *testing.T) {
	for _, env := range []string{EnvClientID, EnvTenantID, EnvTokenFile, EnvAuthorityHost} {
		t.Setenv(env, "")
	}
	base := Config{StorageAccount: "acct", Container: "backups", ClientID: "c", TenantID: "t", TokenFilePath: "/var/run/token"}
	tests := []struct {
		name                     string
		change                   func(*Config)
		serviceURL, authority    string
		prefix                   string
		instanceDiscoveryEnabled bool
	}{
		{"public cloud by default", func(*Config) {}, "https://acct.blob.core.windows.net", "https://login.microsoftonline.com/", "", true},
		{"China", func(c *Config) { c.Cloud = AzureChina }, "https://acct.blob.core.chinacloudapi.cn", "https://login.chinacloudapi.cn/", "", true},
		{"US Government", func(c *Config) { c.Cloud = AzureUSGovernment }, "https://acct.blob.core.usgovcloudapi.net", "https://login.microsoftonline.us/", "", true},
		{"endpoint and authority overrides", func(c *Config) {
			c.Endpoint, c.AuthorityHost, c.Prefix = "https://127.0.0.1:10000/devstoreaccount1/", "https://127.0.0.1:8443", "team/prod/"
		}, "https://127.0.0.1:10000/devstoreaccount1", "https://127.0.0.1:8443/", "team/prod", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg := base
			tt.change(&cfg)
			r, err := cfg.resolve([]string{"https://127.0.0.1:10000/devstoreaccount1"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r.serviceURL).To(Equal(tt.serviceURL))
			g.Expect(r.authority).To(Equal(tt.authority))
			g.Expect(r.Prefix).To(Equal(tt.prefix))
			g.Expect(r.microsoftAuthority()).To(Equal(tt.instanceDiscoveryEnabled))
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	g := NewWithT(t)
	t.Setenv(EnvClientID, "env-client")
	t.Setenv(EnvTenantID, "env-tenant")
	t.Setenv(EnvTokenFile, "/env/token")
	t.Setenv(EnvAuthorityHost, "https://login.example.test/")
	r, err := Config{StorageAccount: "acct", Container: "c", ClientID: "own-client"}.resolve(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.ClientID).To(Equal("own-client"), "the Config wins over the environment")
	g.Expect(r.TenantID).To(Equal("env-tenant"))
	g.Expect(r.TokenFilePath).To(Equal("/env/token"))
	g.Expect(r.authority).To(Equal("https://login.example.test/"))
	g.Expect(r.microsoftAuthority()).To(BeFalse())
}

func TestConfigErrors(t *testing.T) {
	for _, env := range []string{EnvClientID, EnvTenantID, EnvTokenFile, EnvAuthorityHost} {
		t.Setenv(env, "")
	}
	base := Config{StorageAccount: "acct", Container: "backups", ClientID: "c", TenantID: "t", TokenFilePath: "/var/run/token"}
	tests := []struct {
		name   string
		change func(*Config)
		field  string
	}{
		{"no client ID", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"no tenant", func(c *Config) { c.TenantID = "" }, "TenantID"},
		{"no token file", func(c *Config) { c.TokenFilePath = "" }, "TokenFilePath"},
		{"no container", func(c *Config) { c.Container = "" }, "Container"},
		{"unknown cloud", func(c *Config) { c.Cloud = "AzureGermany" }, "Cloud"},
		{"http endpoint", func(c *Config) { c.Endpoint = "http://acct.blob.core.windows.net" }, "Endpoint"},
		{"endpoint with SAS", func(c *Config) { c.Endpoint = "https://acct.blob.core.windows.net/?sig=x" }, "Endpoint"},
		{"endpoint without host", func(c *Config) { c.Endpoint = "https:///acct" }, "Endpoint"},
		{"not a URL", func(c *Config) { c.Endpoint = "https://[::1" }, "Endpoint"},
		{"http authority", func(c *Config) { c.AuthorityHost = "http://127.0.0.1:1/" }, "AuthorityHost"},
		{"absolute prefix", func(c *Config) { c.Prefix = "/abs" }, "Prefix"},
		{"prefix with ..", func(c *Config) { c.Prefix = "a/../b" }, "Prefix"},
		{"prefix inside another target's data", func(c *Config) { c.Prefix = "a/lifeboat/v1/backups/c1" }, "Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg := base
			tt.change(&cfg)
			_, err := cfg.resolve(nil)
			var ce *ConfigError
			g.Expect(errors.As(err, &ce)).To(BeTrue(), "error: %v", err)
			g.Expect(ce.Field).To(Equal(tt.field))
		})
	}
}

// An endpoint is the account's own URL in an Azure cloud, or one the spoke's
// admin allowed; any other is refused before a token is fetched.
func TestEndpointMustBeTheAccountsOrAllowed(t *testing.T) {
	base := Config{StorageAccount: "acct", Container: "backups", ClientID: "c", TenantID: "t", TokenFilePath: "/var/run/token"}
	allowed := []string{"https://10.0.0.5:10000/acct/", "https://acct.blob.private.example"}
	tests := []struct {
		endpoint string
		ok       bool
	}{
		{"https://acct.blob.core.windows.net", true},
		{"https://acct.blob.core.windows.net/", true},
		{"https://acct.blob.core.chinacloudapi.cn", true},
		{"https://acct.blob.core.usgovcloudapi.net", true},
		{"https://10.0.0.5:10000/acct", true},
		{"https://acct.blob.private.example/", true},

		{"https://other.blob.core.windows.net", false},
		{"https://acct.blob.core.windows.net.evil.example", false},
		{"https://acct.blob.core.windows.net:444", false},
		{"https://acct.blob.core.windows.net/other", false},
		{"https://evil.example/acct", false},
		{"https://10.0.0.5:10001/acct", false},
		{"https://10.0.0.5:10000/acct/more", false},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			g := NewWithT(t)
			cfg := base
			cfg.Endpoint = tt.endpoint
			r, err := cfg.resolve(allowed)
			if tt.ok {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(r.serviceURL).To(Equal(strings.TrimSuffix(tt.endpoint, "/")))
				return
			}
			var ce *ConfigError
			g.Expect(errors.As(err, &ce)).To(BeTrue(), "error: %v", err)
			g.Expect(ce.Field).To(Equal("Endpoint"))
			g.Expect(ce.Reason).To(Equal(ReasonEndpointNotAllowed))
			g.Expect(ce.Error()).To(ContainSubstring("--allowed-blob-endpoint"))
		})
	}
}

func TestNames(t *testing.T) {
	c := &Client{cfg: resolved{Config: Config{Prefix: "team/prod"}}}
	valid := map[string]string{
		"backup.json":               "team/prod/backup.json",
		"backups/c1/b1/backup.json": "team/prod/backups/c1/b1/backup.json",
		"with space/and+plus":       "team/prod/with space/and+plus",
		"..hidden/x..":              "team/prod/..hidden/x..",
	}
	for name, want := range valid {
		got, err := c.blobName(name)
		if err != nil || got != want {
			t.Errorf("blobName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"", "/x", "x/", "a//b", ".", "..", "a/../b", "a/./b", "../team/other"} {
		if got, err := c.blobName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("blobName(%q) = %q, %v; want ErrInvalidName", name, got, err)
		}
	}
	long := make([]byte, maxNameLength)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := c.blobName(string(long)); !errors.Is(err, ErrInvalidName) {
		t.Errorf("a name over %d characters with the prefix was accepted", maxNameLength)
	}
}
