// Package main is the lifeboat-hub manager, which runs on the backup cluster:
// it discovers the fleet's clusters and turns fleet admins' resources into
// OCM ManifestWork, one per object and cluster. Its reconcilers land in hub/reconcilers.
package main
