/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package blobproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
)

const (
	account = "devstoreaccount1"
	oid     = "3c9d1a52-7e0b-4f6a-8d21-5b4e9f0c7a13"
	appID   = "0b5a7f3e-9c1d-4d2b-8f0e-3b1f6c2d9e44"
)

type grant struct {
	principal, account, container string
	role                          Role
	cond                          *Condition
}

func TestAuthorizationFollowsAzureRBAC(t *testing.T) {
	reader := func(container string) grant { return grant{oid, account, container, StorageBlobDataReader, nil} }
	contributor := func(container string) grant { return grant{oid, account, container, StorageBlobDataContributor, nil} }
	// ownPrefix is a contributor whose writes are held to cluster's backups and the probes.
	ownPrefix := func(cluster string) grant {
		return grant{oid, account, "c1", StorageBlobDataContributor, &Condition{WritePathPrefixes: []string{"lifeboat/v1/backups/" + cluster + "/", "lifeboat/v1/probes/"}}}
	}
	type req struct {
		method, target string
		header         map[string]string
	}
	get := func(target string) req { return req{method: http.MethodGet, target: target} }
	put := func(target string) req { return req{method: http.MethodPut, target: target} }
	del := func(target string) req { return req{method: http.MethodDelete, target: target} }
	const blob = "/devstoreaccount1/c1/lifeboat/v1/backups/a/b/backup.json"

	cases := []struct {
		name   string
		grants []grant
		req    req
		allow  bool
	}{
		{"no assignment: nothing", nil, get(blob), false},
		{"reader on container reads a blob", []grant{reader("c1")}, get(blob), true},
		{"reader on container reads blob properties", []grant{reader("c1")}, req{method: http.MethodHead, target: blob}, true},
		{"reader on container lists blobs", []grant{reader("c1")}, get("/devstoreaccount1/c1?restype=container&comp=list"), true},
		{"reader on container reads container properties", []grant{reader("c1")}, get("/devstoreaccount1/c1?restype=container"), true},
		{"reader cannot write a blob", []grant{reader("c1")}, put(blob), false},
		{"reader cannot stage a block", []grant{reader("c1")}, put(blob + "?comp=block&blockid=AAAA"), false},
		{"reader cannot delete a blob", []grant{reader("c1")}, del(blob), false},
		{"reader cannot create the container", []grant{reader("c1")}, put("/devstoreaccount1/c1?restype=container"), false},
		{"reader on c1 cannot read c2", []grant{reader("c1")}, get("/devstoreaccount1/c2/x"), false},
		{"container-scoped reader cannot list containers", []grant{reader("c1")}, get("/devstoreaccount1?comp=list"), false},
		{"account-scoped reader lists containers", []grant{reader("")}, get("/devstoreaccount1?comp=list"), true},
		{"account-scoped reader reads any container", []grant{reader("")}, get("/devstoreaccount1/c2/x"), true},
		{"any assignment allows Get Account Information", []grant{reader("c1")}, get("/devstoreaccount1?restype=account&comp=properties"), true},
		{"Get Account Information needs an assignment in that account", []grant{{oid, "otheraccount", "", StorageBlobDataContributor, nil}}, get("/devstoreaccount1?restype=account&comp=properties"), false},
		{"contributor on container writes a blob", []grant{contributor("c1")}, put(blob), true},
		{"contributor on container commits a block list", []grant{contributor("c1")}, put(blob + "?comp=blocklist"), true},
		{"contributor on container deletes a blob", []grant{contributor("c1")}, del(blob), true},
		{"contributor on container creates it", []grant{contributor("c1")}, put("/devstoreaccount1/c1?restype=container"), true},
		{"contributor on container deletes it", []grant{contributor("c1")}, del("/devstoreaccount1/c1?restype=container"), true},
		{"contributor on c1 cannot create c2", []grant{contributor("c1")}, put("/devstoreaccount1/c2?restype=container"), false},
		{"container-scoped contributor cannot list containers", []grant{contributor("c1")}, get("/devstoreaccount1?comp=list"), false},
		{"account-scoped contributor creates any container", []grant{contributor("")}, put("/devstoreaccount1/c2?restype=container"), true},
		{"account-scoped contributor gets a user delegation key", []grant{contributor("")}, req{method: http.MethodPost, target: "/devstoreaccount1?restype=service&comp=userdelegationkey"}, true},
		{"container-scoped contributor gets no user delegation key", []grant{contributor("c1")}, req{method: http.MethodPost, target: "/devstoreaccount1?restype=service&comp=userdelegationkey"}, false},
		{"no data role reads service properties", []grant{contributor("")}, get("/devstoreaccount1?restype=service&comp=properties"), false},
		{"no data role sets a container ACL", []grant{contributor("")}, put("/devstoreaccount1/c1?restype=container&comp=acl"), false},
		{"no data role sets blob tags", []grant{contributor("")}, put(blob + "?comp=tags"), false},
		{"no data role writes a blob with tags", []grant{contributor("")}, req{http.MethodPut, blob, map[string]string{"x-ms-tags": "a=b"}}, false},
		{"copy needs read on the source container", []grant{contributor("c1")},
			req{http.MethodPut, blob, map[string]string{"x-ms-copy-source": "https://proxy.test/devstoreaccount1/c2/src"}}, false},
		{"copy with read on the source container", []grant{contributor("c1"), reader("c2")},
			req{http.MethodPut, blob, map[string]string{"x-ms-copy-source": "https://proxy.test/devstoreaccount1/c2/src"}}, true},
		{"assignment to the client id counts", []grant{{appID, account, "c1", StorageBlobDataReader, nil}}, get(blob), true},
		{"assignment to another principal does not", []grant{{"5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170", account, "c1", StorageBlobDataContributor, nil}}, get(blob), false},
		{"assignment in another account does not", []grant{{oid, "otheraccount", "", StorageBlobDataContributor, nil}}, get(blob), false},
		{"ABAC: contributor writes under its own prefix", []grant{ownPrefix("a")}, put(blob), true},
		{"ABAC: contributor stages a block under its own prefix", []grant{ownPrefix("a")}, put(blob + "?comp=block&blockid=AAAA"), true},
		{"ABAC: contributor deletes under its own prefix", []grant{ownPrefix("a")}, del(blob), true},
		{"ABAC: contributor cannot write under another cluster's prefix", []grant{ownPrefix("b")}, put(blob), false},
		{"ABAC: nor stage a block there", []grant{ownPrefix("b")}, put(blob + "?comp=block&blockid=AAAA"), false},
		{"ABAC: nor delete there", []grant{ownPrefix("b")}, del(blob), false},
		{"ABAC: a prefix of the cluster name is not its folder", []grant{ownPrefix("a")}, put("/devstoreaccount1/c1/lifeboat/v1/backups/ab/x"), false},
		{"ABAC: reads are not restricted", []grant{ownPrefix("b")}, get(blob), true},
		{"ABAC: listing is not restricted", []grant{ownPrefix("b")}, get("/devstoreaccount1/c1?restype=container&comp=list"), true},
		{"ABAC: batch deletes name no path and are refused", []grant{ownPrefix("b")}, req{method: http.MethodPost, target: "/devstoreaccount1/c1?restype=container&comp=batch"}, false},
		{"ABAC: an unconditional assignment still allows", []grant{ownPrefix("b"), contributor("c1")}, put(blob), true},
	}
	claims := &entra.Claims{ObjectID: oid, AppID: appID}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &Proxy{assignments: map[assignment]*Condition{}}
			for _, gr := range tc.grants {
				if gr.cond != nil {
					p.GrantWithCondition(gr.principal, gr.account, gr.container, gr.role, *gr.cond)
				} else {
					p.Grant(gr.principal, gr.account, gr.container, gr.role)
				}
			}
			r := httptest.NewRequest(tc.req.method, "https://proxy.test"+tc.req.target, nil)
			for k, v := range tc.req.header {
				r.Header.Set(k, v)
			}
			op := classify(r)
			g.Expect(p.allowed(claims, op)).To(Equal(tc.allow), "operation %+v", op)
		})
	}
}

func TestRevokeRemovesOnlyThatAssignment(t *testing.T) {
	g := NewWithT(t)
	p := &Proxy{assignments: map[assignment]*Condition{}}
	p.Grant(oid, account, "c1", StorageBlobDataContributor)
	p.Grant(oid, account, "c1", StorageBlobDataReader)
	claims := &entra.Claims{ObjectID: oid, AppID: appID}
	write := classify(httptest.NewRequest(http.MethodPut, "https://proxy.test/devstoreaccount1/c1/x", nil))
	read := classify(httptest.NewRequest(http.MethodGet, "https://proxy.test/devstoreaccount1/c1/x", nil))

	p.Revoke(oid, account, "c1", StorageBlobDataContributor)
	g.Expect(p.allowed(claims, write)).To(BeFalse())
	g.Expect(p.allowed(claims, read)).To(BeTrue())
	p.Revoke(oid, account, "c1", StorageBlobDataReader)
	g.Expect(p.allowed(claims, read)).To(BeFalse())
}

func TestConditionExpressionIsAzures(t *testing.T) {
	g := NewWithT(t)
	c := Condition{WritePathPrefixes: []string{"lifeboat/v1/backups/shoot-a/", "lifeboat/v1/probes/"}}
	g.Expect(c.Expression()).To(Equal(`(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'lifeboat/v1/backups/shoot-a/'
  OR
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'lifeboat/v1/probes/'
 )
)`))
}
