package blob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/lifeboat-dev/lifeboat/spoke/panics"
)

// RoleContributor is the Azure role a target's identity needs on the container.
const RoleContributor = "Storage Blob Data Contributor"

// FederatedAudience is the audience of the service-account tokens that Entra ID
// exchanges, and of federated credentials.
const FederatedAudience = "api://AzureADTokenExchange"

// operation is a step of the validation, for messages.
type operation string

const (
	opReadContainer operation = "reading the container's properties"
	opWrite         operation = "writing the probe blob"
	opRead          operation = "reading the probe blob"
	opDelete        operation = "deleting the probe blob"
)

// storageResult classifies the failure of a storage request.
func (c *Client) storageResult(op operation, err error) Result {
	var afe *azidentity.AuthenticationFailedError
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &afe):
		// The token was refused while the request was being authorized.
		return c.authenticationResult(err, nil, nil)
	case errors.Is(err, ErrInvalidName):
		return Result{Reason: ReasonInvalidConfiguration, Message: err.Error()}
	case errors.As(err, new(*panics.Error)):
		return Result{Reason: ReasonInvalidConfiguration, Message: fmt.Sprintf(
			"the blob endpoint %s gave an answer the storage client could not handle while %s (%v): check that it serves Azure Blob Storage", c.cfg.serviceURL, op, err)}
	case errors.As(err, &re):
		return c.responseResult(op, re)
	case isTransportError(err):
		return Result{Reason: ReasonUnreachable, Message: fmt.Sprintf(
			"could not reach the blob endpoint %s while %s: %s", c.cfg.serviceURL, op, describeTransportError(err))}
	}
	return Result{Reason: ReasonUnreachable, Message: fmt.Sprintf("%s in %s failed: %v", op, c.where(), err)}
}

func (c *Client) responseResult(op operation, re *azcore.ResponseError) Result {
	status := fmt.Sprintf("HTTP %d", re.StatusCode)
	if re.ErrorCode != "" {
		status += " " + re.ErrorCode
	}
	switch {
	case re.StatusCode == http.StatusForbidden:
		// AuthorizationPermissionMismatch and AuthorizationFailure, the usual
		// answers, mean a missing role; a firewall has a code of its own.
		if bloberror.Code(re.ErrorCode) == bloberror.AuthorizationSourceIPMismatch {
			return Result{Reason: ReasonAuthorizationFailed, Message: fmt.Sprintf(
				"storage account %q refused %s from this cluster's address (%s): allow the cluster's egress address or subnet in the storage account's networking rules",
				c.cfg.StorageAccount, op, status)}
		}
		return Result{Reason: ReasonAuthorizationFailed, Message: fmt.Sprintf(
			"storage account %q refused %s to identity %s (%s): assign the role %q to the identity on container %q, or on the storage account; Lifeboat lists, writes, reads and deletes blobs there",
			c.cfg.StorageAccount, op, c.cfg.ClientID, status, RoleContributor, c.cfg.Container)}
	case re.StatusCode == http.StatusUnauthorized:
		detail := storageErrorDetail(re.RawResponse)
		if detail != "" {
			detail = ": " + detail
		}
		return Result{Reason: ReasonAuthenticationFailed, Message: fmt.Sprintf(
			"storage account %q did not accept the Entra ID token of identity %s while %s (%s%s): check that the storage account belongs to tenant %s and cloud %s",
			c.cfg.StorageAccount, c.cfg.ClientID, op, status, detail, c.cfg.TenantID, c.cfg.Cloud)}
	case bloberror.Code(re.ErrorCode) == bloberror.ContainerNotFound:
		return Result{Reason: ReasonContainerNotFound, Message: fmt.Sprintf(
			"storage account %q has no container %q (%s): create the container (Lifeboat does not create containers) or fix the container name",
			c.cfg.StorageAccount, c.cfg.Container, c.cfg.serviceURL)}
	case re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout || re.StatusCode == http.StatusTooManyRequests:
		return Result{Reason: ReasonUnreachable, Message: fmt.Sprintf(
			"the blob endpoint %s answered %s while %s: the storage service, or a proxy or gateway in front of it, is not serving; it is checked again later",
			c.cfg.serviceURL, statusText(re), op)}
	}
	return Result{Reason: ReasonInvalidConfiguration, Message: fmt.Sprintf(
		"the blob endpoint %s answered %s while %s in %s: check that it serves Azure Blob Storage for that account",
		c.cfg.serviceURL, statusText(re), op, c.where())}
}

func statusText(re *azcore.ResponseError) string {
	s := fmt.Sprintf("HTTP %d", re.StatusCode)
	if t := http.StatusText(re.StatusCode); t != "" {
		s += " " + t
	}
	if re.ErrorCode != "" {
		s += " (" + re.ErrorCode + ")"
	}
	return s
}

// storageErrorDetail is the AuthenticationErrorDetail of a storage error document.
func storageErrorDetail(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return ""
	}
	var doc struct {
		Detail string `xml:"AuthenticationErrorDetail"`
	}
	if xml.Unmarshal(body, &doc) != nil {
		return ""
	}
	return strings.TrimSpace(doc.Detail)
}

// authenticationResult classifies a failure to get a token. transportErr is the
// last failed request to the authority, if any; claims are the token file's.
func (c *Client) authenticationResult(err, transportErr error, claims *tokenClaims) Result {
	authority := strings.TrimSuffix(c.cfg.authority, "/")
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		resp := afe.RawResponse
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return Result{Reason: ReasonUnreachable, Message: fmt.Sprintf(
				"the Entra ID authority %s answered HTTP %d %s to the token request of identity %s: it is checked again later",
				authority, resp.StatusCode, http.StatusText(resp.StatusCode), c.cfg.ClientID)}
		}
		code, description := entraError(resp)
		return Result{Reason: ReasonAuthenticationFailed, Message: c.aadMessage(code, description, claims)}
	}
	if transportErr == nil && isTransportError(err) {
		transportErr = err
	}
	if transportErr != nil {
		return Result{Reason: ReasonUnreachable, Message: fmt.Sprintf(
			"could not reach the Entra ID authority %s for a token of identity %s: %s",
			authority, c.cfg.ClientID, describeTransportError(transportErr))}
	}
	return Result{Reason: ReasonAuthenticationFailed, Message: fmt.Sprintf(
		"getting an Entra ID token for identity %s in tenant %s from %s failed: %v",
		c.cfg.ClientID, c.cfg.TenantID, authority, firstLine(err))}
}

var aadstsCode = regexp.MustCompile(`AADSTS(\d+)`)

// entraError reads the AADSTS code and description of Entra ID's JSON error document.
func entraError(resp *http.Response) (int, string) {
	body, err := runtime.Payload(resp)
	if err != nil {
		return 0, ""
	}
	var doc struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return 0, strings.TrimSpace(string(body))
	}
	description := doc.Description
	// Entra appends trace and correlation IDs, which say nothing to a person.
	if i := strings.Index(description, " Trace ID:"); i >= 0 {
		description = description[:i]
	}
	code := 0
	if len(doc.Codes) > 0 {
		code = doc.Codes[0]
	} else if m := aadstsCode.FindStringSubmatch(doc.Description); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	if description == "" {
		description = doc.Error
	}
	return code, strings.TrimSpace(description)
}

// aadMessage says what Entra ID refused and what to change.
func (c *Client) aadMessage(code int, description string, claims *tokenClaims) string {
	iss, sub, aud, exp := "<the cluster's service-account issuer>", "<the spoke's service account>", "", ""
	if claims != nil {
		if claims.Issuer != "" {
			iss = claims.Issuer
		}
		if claims.Subject != "" {
			sub = claims.Subject
		}
		aud = strings.Join(claims.Audience, ",")
		if claims.Expiry > 0 {
			exp = time.Unix(int64(claims.Expiry), 0).UTC().Format(time.RFC3339)
		}
	}
	id, tenant := c.cfg.ClientID, c.cfg.TenantID
	addCredential := fmt.Sprintf("add a federated credential on the managed identity %s for issuer %s and subject %s (audience %s)", id, iss, sub, FederatedAudience)
	var fix string
	switch code {
	case 700211:
		fix = fmt.Sprintf("identity %s has no federated credential for this cluster's issuer %s: %s", id, iss, addCredential)
	case 700213:
		fix = fmt.Sprintf("identity %s trusts issuer %s, but not for subject %s: %s", id, iss, sub, addCredential)
	case 70021:
		fix = fmt.Sprintf("identity %s has a federated credential for issuer %s and subject %s, but with another audience than the token's (%s): set the credential's audience to %s and project the token with that audience", id, iss, sub, aud, FederatedAudience)
	case 700016:
		fix = fmt.Sprintf("tenant %s has no application with client ID %s: check clientID and tenantID", tenant, id)
	case 90002:
		fix = fmt.Sprintf("Entra ID at %s knows no tenant %s: check tenantID and cloud", strings.TrimSuffix(c.cfg.authority, "/"), tenant)
	case 700024:
		fix = fmt.Sprintf("%s is expired or not yet valid (exp %s): check the node's clock, and for a token file the pod's projected token volume", c.tokenOrigin(), exp)
	case 700027, 7000272:
		fix = fmt.Sprintf("Entra ID could not verify the service-account token with the keys that issuer %s publishes: publish the cluster's current service-account signing keys at the issuer's jwks_uri", iss)
	case 90061:
		fix = fmt.Sprintf("Entra ID could not read the OIDC discovery document or keys of issuer %s: the issuer must serve them publicly over https", iss)
	case 50027:
		fix = fmt.Sprintf("Entra ID found %s malformed: it must be a Kubernetes service-account token", c.tokenOrigin())
	default:
		fix = fmt.Sprintf("Entra ID refused a token to identity %s in tenant %s", id, tenant)
	}
	msg := "AADSTS" + strconv.Itoa(code) + ": " + fix
	if code == 0 {
		msg = fix
	}
	if description != "" {
		msg += " (Entra ID said: " + description + ")"
	}
	return msg
}

// isTransportError reports whether err is a failure to exchange HTTP with a server at all.
func isTransportError(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	var ne net.Error
	var rh tls.RecordHeaderError
	return errors.As(err, &ue) || errors.As(err, &oe) || errors.As(err, &ne) || errors.As(err, &rh) ||
		isCertificateError(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

func isCertificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// describeTransportError says in a few words why a server could not be reached.
func describeTransportError(err error) string {
	var dns *net.DNSError
	var oe *net.OpError
	var ne net.Error
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("the name %s could not be resolved (%s)", dns.Name, dns.Err)
	case isCertificateError(err):
		return fmt.Sprintf("its TLS certificate is not trusted: %v", innermost(err))
	case errors.As(err, &rh):
		return "it does not speak TLS (is the endpoint http?)"
	case errors.Is(err, syscall.ECONNREFUSED):
		if errors.As(err, &oe) && oe.Addr != nil {
			return fmt.Sprintf("connection refused by %s", oe.Addr)
		}
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.As(err, &oe):
		return oe.Error()
	}
	return innermost(err).Error()
}

// innermost unwraps single-error chains down to the cause.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
