// Package v1alpha1 is the spoke API of Lifeboat (group backup.lifeboat.dev): what a
// spoke does in its own cluster, and the field shapes the hub API shares with it.
// +kubebuilder:object:generate=true
// +groupName=backup.lifeboat.dev
package v1alpha1
