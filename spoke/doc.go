// Package main is the lifeboat-spoke manager, which runs on every cluster: it
// validates backup targets with Azure Workload Identity and runs backups,
// restores, syncs and deletions locally. Its reconcilers land in spoke/reconcilers.
package main
