// Package discovery finds the fleet's clusters: Gardener shoots in project
// namespaces, selected by project and label, behind a small interface.
package discovery
