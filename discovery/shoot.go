package discovery

import (
	"fmt"
	"maps"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
)

// FromGardener converts a Gardener Shoot in a project namespace and decides
// whether it is ready to be onboarded.
func FromGardener(s *gardencorev1beta1.Shoot) Shoot {
	project := projectOfNamespace(s.Namespace)
	out := Shoot{
		Project:     project,
		Name:        s.Name,
		ClusterName: ClusterName(project, s.Name),
		Provider:    s.Spec.Provider.Type,
		Region:      s.Spec.Region,
		Labels:      maps.Clone(s.Labels),
		APIServer:   apiServerURL(s.Status.AdvertisedAddresses),
		Deleting:    s.DeletionTimestamp != nil,
		Hibernated:  s.Status.IsHibernated || (s.Spec.Hibernation != nil && s.Spec.Hibernation.Enabled != nil && *s.Spec.Hibernation.Enabled),
	}
	if s.Status.SeedName != nil {
		out.Seed = *s.Status.SeedName
	} else if s.Spec.SeedName != nil {
		out.Seed = *s.Spec.SeedName
	}
	out.NotReadyReason, out.NotReadyMessage = notReady(s, out.Deleting)
	out.Ready = out.NotReadyReason == ""
	return out
}

// notReady returns why the shoot cannot be onboarded now, or "" when it can.
func notReady(s *gardencorev1beta1.Shoot, deleting bool) (reason, message string) {
	hibernationEnabled := s.Spec.Hibernation != nil && s.Spec.Hibernation.Enabled != nil && *s.Spec.Hibernation.Enabled
	op := s.Status.LastOperation
	switch {
	case deleting:
		return NotReadyBeingDeleted, "being deleted"
	case s.Status.IsHibernated && hibernationEnabled:
		return NotReadyHibernated, "hibernated"
	case hibernationEnabled:
		return NotReadyHibernated, "being hibernated"
	case s.Status.IsHibernated:
		return NotReadyHibernated, "waking up from hibernation"
	case op == nil:
		return NotReadyNotReconciled, "not reconciled by Gardener yet"
	case op.State == gardencorev1beta1.LastOperationStateSucceeded:
		return "", ""
	case op.Type == gardencorev1beta1.LastOperationTypeReconcile &&
		(op.State == gardencorev1beta1.LastOperationStateProcessing || op.State == gardencorev1beta1.LastOperationStatePending):
		// A reconcile only runs on a shoot that was created: the cluster works.
		return "", ""
	}
	msg := fmt.Sprintf("last operation %s %s %d%%", op.Type, op.State, op.Progress)
	if op.Description != "" {
		msg += ": " + op.Description
	}
	return NotReadyLastOperation, msg
}

// apiServerURL picks the advertised address named "external", else the first.
func apiServerURL(addrs []gardencorev1beta1.ShootAdvertisedAddress) string {
	for _, a := range addrs {
		if a.Name == "external" {
			return a.URL
		}
	}
	if len(addrs) > 0 {
		return addrs[0].URL
	}
	return ""
}
