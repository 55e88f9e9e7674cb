/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package blobproxy

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Role is an Azure built-in role for blob data.
type Role string

// The data roles the fleet grants, with Azure's names.
const (
	StorageBlobDataReader      Role = "Storage Blob Data Reader"
	StorageBlobDataContributor Role = "Storage Blob Data Contributor"
)

// permission is an Azure RBAC action or data action of the blob service.
type permission string

const (
	prefix             = "Microsoft.Storage/storageAccounts/blobServices/"
	serviceRead        = permission(prefix + "read")
	serviceWrite       = permission(prefix + "write")
	userDelegationKey  = permission(prefix + "generateUserDelegationKey/action")
	containersRead     = permission(prefix + "containers/read")
	containersWrite    = permission(prefix + "containers/write")
	containersDelete   = permission(prefix + "containers/delete")
	containersSetACL   = permission(prefix + "containers/setAcl/action")
	blobsRead          = permission(prefix + "containers/blobs/read")
	blobsWrite         = permission(prefix + "containers/blobs/write")
	blobsAdd           = permission(prefix + "containers/blobs/add/action")
	blobsDelete        = permission(prefix + "containers/blobs/delete")
	blobsTagsRead      = permission(prefix + "containers/blobs/tags/read")
	blobsTagsWrite     = permission(prefix + "containers/blobs/tags/write")
	blobsFilter        = permission(prefix + "containers/blobs/filter/action")
	blobsImmutability  = permission(prefix + "containers/blobs/immutableStorage/runAsSuperUser/action")
	unsupportedRequest = permission("")
)

// rolePermissions are the actions and data actions of each role, as Azure
// defines them. Neither role has blobServices/read or write (service
// properties), setAcl, or the tag permissions: those need Owner or a
// management role, so the proxy refuses them.
var rolePermissions = map[Role][]permission{
	StorageBlobDataReader: {
		containersRead, userDelegationKey,
		blobsRead,
	},
	StorageBlobDataContributor: {
		containersRead, containersWrite, containersDelete, userDelegationKey,
		blobsRead, blobsWrite, blobsAdd, blobsDelete,
	},
}

func (r Role) has(p permission) bool {
	for _, q := range rolePermissions[r] {
		if q == p {
			return true
		}
	}
	return false
}

// operation is what a request does, in RBAC terms.
type operation struct {
	name      string // REST operation, for the log
	account   string
	container string // "" for account-level operations
	blob      string // the blob's path in its container, "" for container and account operations
	perm      permission
	// accountScope: the role must be assigned on the whole account (list
	// containers, user delegation keys, service properties), not a container.
	accountScope bool
	// anyRole: any role assignment in the account will do (Get Account Information).
	anyRole bool
	// copySource is the container a same-account copy reads from, which needs blobs/read too.
	copySource string
}

// classify maps a path-style blob request (/account/container/blob) to its operation.
func classify(r *http.Request) operation {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	op := operation{account: parts[0], perm: unsupportedRequest}
	container, blob := "", ""
	if len(parts) > 1 {
		container = parts[1]
	}
	if len(parts) > 2 {
		blob = parts[2]
	}
	op.container, op.blob = container, blob
	q := r.URL.Query()
	restype, comp := strings.ToLower(q.Get("restype")), strings.ToLower(q.Get("comp"))
	read := r.Method == http.MethodGet || r.Method == http.MethodHead

	if restype == "account" && comp == "properties" && read {
		op.name, op.anyRole = "GetAccountInformation", true
		return op
	}
	switch {
	case container == "":
		op.accountScope = true
		switch {
		case restype == "service" && comp == "properties" && read:
			op.name, op.perm = "GetBlobServiceProperties", serviceRead
		case restype == "service" && comp == "properties" && r.Method == http.MethodPut:
			op.name, op.perm = "SetBlobServiceProperties", serviceWrite
		case restype == "service" && comp == "stats" && read:
			op.name, op.perm = "GetBlobServiceStats", serviceRead
		case restype == "service" && comp == "userdelegationkey" && r.Method == http.MethodPost:
			op.name, op.perm = "GetUserDelegationKey", userDelegationKey
		case comp == "list" && read:
			op.name, op.perm = "ListContainers", containersRead
		case comp == "blobs" && read:
			op.name, op.perm = "FindBlobsByTags", blobsFilter
		case comp == "batch" && r.Method == http.MethodPost:
			op.name, op.perm = "BlobBatch", blobsDelete
		}
	case blob == "" && restype == "container":
		op.name, op.perm = containerOperation(r.Method, comp)
	case blob == "":
		// A container URL without restype=container names a blob in the $root container.
		op.name, op.perm = "Unsupported", unsupportedRequest
	default:
		op.name, op.perm = blobOperation(r.Method, comp, r.Header)
		if src := r.Header.Get("x-ms-copy-source"); src != "" && op.perm == blobsWrite {
			op.copySource = sameAccountContainer(src, r.Host, op.account)
		}
	}
	return op
}

func containerOperation(method, comp string) (string, permission) {
	read := method == http.MethodGet || method == http.MethodHead
	switch {
	case comp == "" && method == http.MethodPut:
		return "CreateContainer", containersWrite
	case comp == "" && read:
		return "GetContainerProperties", containersRead
	case comp == "" && method == http.MethodDelete:
		return "DeleteContainer", containersDelete
	case comp == "metadata" && read:
		return "GetContainerMetadata", containersRead
	case comp == "metadata" && method == http.MethodPut:
		return "SetContainerMetadata", containersWrite
	case comp == "acl" && read:
		return "GetContainerACL", containersRead
	case comp == "acl" && method == http.MethodPut:
		return "SetContainerACL", containersSetACL
	case comp == "lease" && method == http.MethodPut:
		return "LeaseContainer", containersWrite
	case comp == "list" && read:
		return "ListBlobs", blobsRead
	case comp == "blobs" && read:
		return "FindBlobsByTags", blobsFilter
	case comp == "batch" && method == http.MethodPost:
		return "BlobBatch", blobsDelete
	case (comp == "undelete" || comp == "rename") && method == http.MethodPut:
		return "RestoreContainer", containersWrite
	}
	return "Unsupported", unsupportedRequest
}

func blobOperation(method, comp string, h http.Header) (string, permission) {
	switch method {
	case http.MethodGet, http.MethodHead:
		switch comp {
		case "", "metadata", "blocklist", "pagelist":
			return "GetBlob", blobsRead
		case "tags":
			return "GetBlobTags", blobsTagsRead
		}
	case http.MethodPut:
		if h.Get("x-ms-tags") != "" {
			return "SetBlobTags", blobsTagsWrite
		}
		switch comp {
		case "", "block", "blocklist", "page", "appendblock", "metadata", "properties", "lease", "snapshot", "tier", "copy", "undelete", "seal", "expiry", "incrementalcopy":
			return "WriteBlob", blobsWrite
		case "tags":
			return "SetBlobTags", blobsTagsWrite
		case "immutabilitypolicies", "legalhold":
			return "SetImmutability", blobsImmutability
		}
	case http.MethodDelete:
		switch comp {
		case "":
			return "DeleteBlob", blobsDelete
		case "immutabilitypolicies":
			return "DeleteImmutabilityPolicy", blobsImmutability
		}
	case http.MethodPost:
		if comp == "query" {
			return "QueryBlobContents", blobsRead
		}
	}
	return "Unsupported", unsupportedRequest
}

// sameAccountContainer returns the container of a copy source in the same
// account behind this proxy, or "" for a source elsewhere (whose own
// authorization the service checks).
func sameAccountContainer(src, host, account string) string {
	u, err := url.Parse(src)
	if err != nil || !strings.EqualFold(u.Host, host) {
		return ""
	}
	parts := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 3)
	if len(parts) < 3 || parts[0] != account {
		return ""
	}
	return parts[1]
}

// Condition is an Azure ABAC condition on a blob data role assignment, of the
// one shape the fleet models: the assignment allows blob writes, adds and
// deletes only for blobs whose path in the container starts with one of
// WritePathPrefixes; its other permissions are unconditional. Azure evaluates
// the same condition from Expression on the blob's path attribute.
type Condition struct {
	WritePathPrefixes []string
}

// writeActions are the data actions that Condition restricts to its prefixes.
var writeActions = []permission{blobsWrite, blobsAdd, blobsDelete}

func (c Condition) allows(perm permission, blob string) bool {
	if !slices.Contains(writeActions, perm) {
		return true
	}
	return blob != "" && slices.ContainsFunc(c.WritePathPrefixes, func(p string) bool { return strings.HasPrefix(blob, p) })
}

// Expression is the condition as Azure writes it (version 2.0), for
// `az role assignment create --condition ... --condition-version 2.0`.
func (c Condition) Expression() string {
	var not, paths []string
	for _, a := range writeActions {
		not = append(not, fmt.Sprintf("  !(ActionMatches{'%s'})", a))
	}
	for _, p := range c.WritePathPrefixes {
		paths = append(paths, fmt.Sprintf("  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith '%s'", p))
	}
	return "(\n (\n" + strings.Join(not, "\n  AND\n") + "\n )\n OR\n (\n" + strings.Join(paths, "\n  OR\n") + "\n )\n)"
}
