/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package entra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// AADSTS codes the stand-in answers with. The numbers and texts follow what
// Microsoft Entra ID returns today for the same mistake (taken from real
// responses quoted in public issue threads); where Entra has several codes for
// one mistake, the one azidentity users see most is used.
const (
	CodeTenantNotFound         = 90002   // invalid_tenant: no such tenant
	CodeMissingParameter       = 900144  // invalid_request: a required form field is missing
	CodeUnsupportedGrantType   = 70003   // unsupported_grant_type
	CodeAssertionRequired      = 7000216 // invalid_client: no client_assertion of the jwt-bearer type
	CodeClientSecretInvalid    = 7000215 // invalid_client: the stand-in's apps have no secrets
	CodeAppNotFound            = 700016  // unauthorized_client: no such app in the tenant
	CodeMalformedAssertion     = 50027   // invalid_request: the assertion is not a JWT
	CodeNoIssuerMatch          = 700211  // invalid_client: no federated credential has the assertion's issuer
	CodeIssuerMetadata         = 90061   // invalid_request: the issuer's discovery document or keys could not be read
	CodeSigningKeyNotFound     = 7000272 // invalid_client: the assertion's kid is not in the issuer's JWKS
	CodeInvalidSignature       = 700027  // invalid_client: the signature does not verify
	CodeAssertionTimeRange     = 700024  // invalid_client: exp/nbf outside the valid range
	CodeNoSubjectMatch         = 700213  // invalid_client: issuer matches, subject does not
	CodeNoFederatedRecordMatch = 70021   // invalid_client: issuer and subject match, audience does not
	CodeInvalidScope           = 70011   // invalid_scope: scope is not one resource's /.default
	CodeScopeNotDefault        = 1002012 // invalid_scope: client credentials need <resource>/.default
	CodeResourceNotFound       = 500011  // invalid_resource: no such resource principal
)

const workloadIdentityDoc = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

// aadError is one refusal, in the terms Entra uses on the wire.
type aadError struct {
	status int    // HTTP status
	kind   string // OAuth "error" value
	code   int    // AADSTS number
	text   string // description without the trailing trace/correlation/timestamp
}

func (e *aadError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.code, e.text) }

func refuse(kind string, code int, format string, args ...any) *aadError {
	status := http.StatusBadRequest
	switch kind {
	case "invalid_client":
		status = http.StatusUnauthorized
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	}
	return &aadError{status: status, kind: kind, code: code, text: fmt.Sprintf(format, args...)}
}

// errorBody is Entra's JSON error document; the field order matches Entra's.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// correlationID is the caller's client-request-id (MSAL sends one) or a new one, as Entra does.
func correlationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); guid.MatchString(id) {
		return id
	}
	return uuid.NewString()
}

func writeAADError(w http.ResponseWriter, r *http.Request, e *aadError) {
	trace, corr := uuid.NewString(), correlationID(r)
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	body := errorBody{
		Error:            e.kind,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", e.code, e.text, trace, corr, ts),
		ErrorCodes:       []int{e.code},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", e.code),
	}
	w.Header().Set("x-ms-request-id", trace)
	w.Header().Set("client-request-id", corr)
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
