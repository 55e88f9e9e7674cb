//go:build tools

// Package wiwebhook pins the Azure Workload Identity mutating webhook that the
// local fleet runs on every spoke, as a pod, the way it runs in production.
package wiwebhook

import _ "github.com/Azure/azure-workload-identity/cmd/webhook"
