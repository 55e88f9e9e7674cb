// Package blob reaches a backup target's Azure Blob container as the target's own
// Entra ID identity, with Azure Workload Identity.
//
// A spoke builds one Client per BackupTarget, each signing in with the target's
// client ID and tenant and a service-account token of the target's own
// (Config.Assertion), so one spoke serves several identities at once and an
// identity trusts only the targets whose subjects it federates. Nothing in
// here knows Kubernetes: package targets maps a BackupTarget to a Config.
package blob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Cloud names an Azure cloud. The values are those of the spoke API's AzureCloud.
type Cloud string

// Azure clouds.
const (
	AzurePublic       Cloud = "AzurePublic"
	AzureChina        Cloud = "AzureChina"
	AzureUSGovernment Cloud = "AzureUSGovernment"
)

// Environment variables that Azure Workload Identity's webhook sets in a pod,
// read when the matching Config field is empty, as azidentity does.
const (
	EnvClientID      = "AZURE_CLIENT_ID"
	EnvTenantID      = "AZURE_TENANT_ID"
	EnvTokenFile     = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAuthorityHost = "AZURE_AUTHORITY_HOST"
)

// cloudEndpoints are each cloud's blob endpoint suffix and Entra ID authority.
var cloudEndpoints = map[Cloud]struct{ blobSuffix, authority string }{
	AzurePublic:       {"blob.core.windows.net", cloud.AzurePublic.ActiveDirectoryAuthorityHost},
	AzureChina:        {"blob.core.chinacloudapi.cn", cloud.AzureChina.ActiveDirectoryAuthorityHost},
	AzureUSGovernment: {"blob.core.usgovcloudapi.net", cloud.AzureGovernment.ActiveDirectoryAuthorityHost},
}

// microsoftAuthorities are Entra ID hosts that answer instance discovery; any
// other authority (a private cloud, a test) is used without it.
var microsoftAuthorities = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.microsoftonline.us":         true,
	"login.usgovcloudapi.net":          true,
}

// Config is one storage target. Its fields follow the spoke API's
// StorageTarget (azure.* and identity.*), plus where the pod's token is.
type Config struct {
	// StorageAccount is the storage account's name.
	StorageAccount string
	// Container is the blob container; it must exist.
	Container string
	// Prefix is the folder in the container under which every name lives; empty is the root.
	Prefix string
	// Endpoint replaces the blob service URL that Cloud and StorageAccount imply.
	// It must be the account's own URL in an Azure cloud,
	// https://myaccount.blob.core.windows.net, or a private endpoint that New's
	// WithAllowedEndpoints allows, such as https://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
	// Cloud picks the default endpoint suffix and authority; empty is AzurePublic.
	Cloud Cloud

	// ClientID is the identity's application (client) ID; default $AZURE_CLIENT_ID.
	ClientID string
	// TenantID is the identity's tenant; default $AZURE_TENANT_ID.
	TenantID string
	// TokenFilePath is the projected service-account token; default
	// $AZURE_FEDERATED_TOKEN_FILE. Unused when Assertion is set.
	TokenFilePath string
	// Assertion, when set, gives the service-account tokens to sign in with
	// instead of TokenFilePath.
	Assertion *ClientAssertion
	// AuthorityHost is the Entra ID authority; default $AZURE_AUTHORITY_HOST, else the cloud's.
	AuthorityHost string
}

// ClientAssertion is a source of service-account tokens (client assertions) for
// Entra ID's token exchange.
type ClientAssertion struct {
	// Subject is the tokens' subject. Clients of one identity whose
	// assertions have the same subject share a credential and its tokens.
	Subject string
	// Token returns a token that is valid for a few minutes at least.
	Token func(ctx context.Context) (string, error)
}

// ConfigError is a Config that cannot work as written; Validate reports it
// with its Reason.
type ConfigError struct {
	// Field is the Config field at fault.
	Field string
	// Problem says what is wrong and how to fix it.
	Problem string
	// Reason classifies the problem; empty is ReasonInvalidConfiguration.
	Reason string
}

func (e *ConfigError) Error() string { return "blob: " + e.Field + ": " + e.Problem }

// resolved is a Config with its defaults filled in and checked.
type resolved struct {
	Config
	serviceURL string // account URL without a trailing slash
	authority  string // https URL with a trailing slash
}

// resolve fills in the defaults from the environment and the cloud, and checks
// the result; an endpoint must be the account's own or one of allowed.
func (c Config) resolve(allowed []string) (resolved, error) {
	r := resolved{Config: c}
	env := func(v *string, name string) {
		if *v == "" {
			*v = os.Getenv(name)
		}
	}
	env(&r.ClientID, EnvClientID)
	env(&r.TenantID, EnvTenantID)
	if r.Assertion == nil {
		env(&r.TokenFilePath, EnvTokenFile)
	} else {
		r.TokenFilePath = ""
	}
	env(&r.AuthorityHost, EnvAuthorityHost)
	if r.Cloud == "" {
		r.Cloud = AzurePublic
	}
	ce, ok := cloudEndpoints[r.Cloud]
	if !ok {
		return r, &ConfigError{Field: "Cloud", Problem: fmt.Sprintf("unknown cloud %q: use AzurePublic, AzureChina or AzureUSGovernment", r.Cloud)}
	}

	var field string
	var missing []string
	for _, f := range []struct{ name, value, hint string }{
		{"StorageAccount", r.StorageAccount, "the storage account's name"},
		{"Container", r.Container, "the blob container's name"},
		{"ClientID", r.ClientID, "the identity's client ID, or set " + EnvClientID},
		{"TenantID", r.TenantID, "the identity's tenant ID, or set " + EnvTenantID},
		{"TokenFilePath", r.TokenFilePath, "the projected service-account token file, or set " + EnvTokenFile + " (is the pod labelled azure.workload.identity/use=true?)"},
	} {
		if f.name == "TokenFilePath" && r.Assertion != nil {
			continue
		}
		if strings.TrimSpace(f.value) == "" {
			if field == "" {
				field = f.name
			}
			missing = append(missing, f.name+" ("+f.hint+")")
		}
	}
	if len(missing) > 0 {
		return r, &ConfigError{Field: field, Problem: "missing " + strings.Join(missing, "; ")}
	}

	prefix, err := cleanPrefix(r.Prefix)
	if err != nil {
		return r, &ConfigError{Field: "Prefix", Problem: err.Error()}
	}
	r.Prefix = prefix

	if r.Endpoint == "" {
		r.serviceURL = "https://" + r.StorageAccount + "." + ce.blobSuffix
	} else {
		u, err := url.Parse(r.Endpoint)
		invalid := func(problem string) (resolved, error) {
			return r, &ConfigError{Field: "Endpoint", Problem: fmt.Sprintf("%q %s", r.Endpoint, problem)}
		}
		switch {
		case err != nil:
			return invalid("is not a URL: " + err.Error())
		case u.Scheme != "https":
			return invalid("must be an https URL: Azure Storage takes Entra ID tokens only over https")
		case u.Host == "" || u.Hostname() == "":
			return invalid("has no host")
		case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			return invalid("must be the blob service URL only, without credentials, query or fragment")
		}
		r.serviceURL = strings.TrimSuffix(u.String(), "/")
		if !r.accountURL() && !slices.ContainsFunc(allowed, func(a string) bool { return strings.TrimSuffix(a, "/") == r.serviceURL }) {
			return r, &ConfigError{Field: "Endpoint", Reason: ReasonEndpointNotAllowed, Problem: fmt.Sprintf(
				"%s is not storage account %q's own blob endpoint (https://%s.%s in cloud %s), and this cluster's admin has not allowed it as a private endpoint "+
					"(lifeboat-spoke --allowed-blob-endpoint): no token is sent there", r.serviceURL, r.StorageAccount, r.StorageAccount, ce.blobSuffix, r.Cloud)}
		}
	}

	if r.AuthorityHost == "" {
		r.AuthorityHost = ce.authority
	}
	u, err := url.Parse(r.AuthorityHost)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return r, &ConfigError{Field: "AuthorityHost", Problem: fmt.Sprintf("%q must be an https URL such as %s", r.AuthorityHost, cloudEndpoints[AzurePublic].authority)}
	}
	r.authority = strings.TrimSuffix(u.String(), "/") + "/"
	return r, nil
}

// accountURL reports whether the service URL is the storage account's own in
// one of the Azure clouds, https://<account>.blob.core.windows.net and the like.
func (r resolved) accountURL() bool {
	for _, ce := range cloudEndpoints {
		if r.serviceURL == "https://"+r.StorageAccount+"."+ce.blobSuffix {
			return true
		}
	}
	return false
}

// microsoftAuthority reports whether the authority is one of Entra ID's own hosts.
func (r resolved) microsoftAuthority() bool {
	u, err := url.Parse(r.authority)
	return err == nil && microsoftAuthorities[strings.ToLower(u.Hostname())]
}

// cleanPrefix checks a target prefix as the CRDs do (archive.ValidatePrefix),
// a trailing '/' aside.
func cleanPrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	return p, archive.ValidatePrefix(p)
}

// errBadName is wrapped by every refusal of a name.
var errBadName = errors.New("names are relative paths with '/' between non-empty segments, none of them '.' or '..'")

func checkPath(p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("leading '/': %w", errBadName)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("empty segment: %w", errBadName)
		case ".", "..":
			return fmt.Errorf("%q segment: %w", seg, errBadName)
		}
	}
	return nil
}
