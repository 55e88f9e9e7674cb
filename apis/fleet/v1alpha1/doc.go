// Package v1alpha1 is the hub API of Lifeboat (group fleet.lifeboat.dev): the
// objects fleet admins and tenants use on the hub to back up and restore
// applications across the fleet.
// +kubebuilder:object:generate=true
// +groupName=fleet.lifeboat.dev
package v1alpha1
