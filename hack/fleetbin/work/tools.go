//go:build tools

// Package work pins the OCM work agent the local fleet runs on every spoke.
package work

import _ "open-cluster-management.io/ocm/cmd/work"
