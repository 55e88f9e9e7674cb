package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MoverSettings are how the pods that move volume data (a backup's readers,
// a restore's fillers) run on a cluster, like KubeStash's runtimeSettings.
// They apply to every mover pod the spoke creates for the target, in the
// claim's namespace; that namespace's own admission rules (quotas by priority
// class, PodNodeSelector, PodTolerationRestriction, Pod Security) apply to
// them as to the team's own pods.
type MoverSettings struct {
	// resources are the mover container's requests and limits (cpu, memory,
	// ephemeral-storage).
	// +optional
	Resources *MoverResources `json:"resources,omitempty"`

	// nodeSelector restricts the nodes a mover may run on. A backup's mover
	// of a claim that a running pod mounts runs on that pod's node whatever
	// this says (a ReadWriteOnce volume can be mounted only there).
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="nodeSelector keys must be label keys such as topology.kubernetes.io/zone: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' and '.'"
	// +optional
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`

	// tolerations let movers run on nodes with these taints.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Tolerations []MoverToleration `json:"tolerations,omitempty"`

	// priorityClassName is the movers' PriorityClass, which must exist on the
	// cluster. The system- classes are for the cluster's own critical pods.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="priorityClassName must be a PriorityClass name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('system-')",message="priorityClassName must not be a system- class: those are for the cluster's own critical pods"
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// LabelValue is the value of a Kubernetes label.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$')",message="nodeSelector values must be label values: up to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
type LabelValue string

// MoverResources are a container's compute resources.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",message="each request must be at most its limit"
type MoverResources struct {
	// requests are what the scheduler reserves for a mover.
	// +kubebuilder:validation:MaxProperties=3
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'])",message="resources may name only cpu, memory and ephemeral-storage"
	// +optional
	Requests map[corev1.ResourceName]resource.Quantity `json:"requests,omitempty"`

	// limits are the most a mover may use.
	// +kubebuilder:validation:MaxProperties=3
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'])",message="resources may name only cpu, memory and ephemeral-storage"
	// +optional
	Limits map[corev1.ResourceName]resource.Quantity `json:"limits,omitempty"`
}

// MoverToleration is a pod toleration (see the Kubernetes Toleration).
// +kubebuilder:validation:XValidation:rule="!has(self.operator) || self.operator != 'Exists' || !has(self.value) || size(self.value) == 0",message="a toleration with operator Exists has no value"
// +kubebuilder:validation:XValidation:rule="has(self.key) && size(self.key) > 0 || has(self.operator) && self.operator == 'Exists'",message="a toleration without a key must have operator Exists (it tolerates every taint)"
// +kubebuilder:validation:XValidation:rule="!has(self.tolerationSeconds) || has(self.effect) && self.effect == 'NoExecute'",message="tolerationSeconds is only for effect NoExecute"
type MoverToleration struct {
	// key is the taint key; empty with operator Exists tolerates every taint.
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')",message="key must be a taint key such as node-role.kubernetes.io/backup"
	// +optional
	Key string `json:"key,omitempty"`

	// operator is Equal (the default: the taint's value must be value) or Exists.
	// +kubebuilder:validation:Enum=Equal;Exists
	// +optional
	Operator corev1.TolerationOperator `json:"operator,omitempty"`

	// value is the taint value that operator Equal matches.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$')",message="value must be a label value: letters, digits, '-', '_' and '.'"
	// +optional
	Value string `json:"value,omitempty"`

	// effect is the taint effect to tolerate; empty tolerates every effect.
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	// +optional
	Effect corev1.TaintEffect `json:"effect,omitempty"`

	// tolerationSeconds, for effect NoExecute, is how long a mover stays on a
	// node once the taint appears.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// Toleration is t as a Kubernetes Toleration.
func (t MoverToleration) Toleration() corev1.Toleration {
	return corev1.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect, TolerationSeconds: t.TolerationSeconds}
}
