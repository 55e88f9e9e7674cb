package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ConfigPhase is whether a configuration object that others refer to
// (SchedulePolicy, ExecRule) can be used.
// +kubebuilder:validation:Enum=Pending;Ready;Invalid
type ConfigPhase string

// Configuration phases.
const (
	// ConfigPending: not checked yet.
	ConfigPending ConfigPhase = "Pending"
	// ConfigReady: checked and usable.
	ConfigReady ConfigPhase = "Ready"
	// ConfigInvalid: passed schema validation but cannot be used, e.g. a cron
	// expression with an out-of-range value; the Ready condition says why.
	ConfigInvalid ConfigPhase = "Invalid"
)

// Retention says how many scheduled backups to keep. A backup is kept if any rule
// keeps it; the others are deleted through the normal delete path.
// +kubebuilder:validation:XValidation:rule="(has(self.keepLast) && self.keepLast > 0) || (has(self.keepDaily) && self.keepDaily > 0) || (has(self.keepWeekly) && self.keepWeekly > 0) || (has(self.keepMonthly) && self.keepMonthly > 0)",message="retention must keep at least one backup: set keepLast, keepDaily, keepWeekly or keepMonthly above 0"
type Retention struct {
	// keepLast keeps the latest n successful backups.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepLast int32 `json:"keepLast,omitempty"`

	// keepDaily keeps the latest successful backup of each of the last n days.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepDaily int32 `json:"keepDaily,omitempty"`

	// keepWeekly keeps the latest successful backup of each of the last n weeks.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepWeekly int32 `json:"keepWeekly,omitempty"`

	// keepMonthly keeps the latest successful backup of each of the last n months.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepMonthly int32 `json:"keepMonthly,omitempty"`
}

// SchedulePolicySpec says when backups run and how many to keep.
// +kubebuilder:validation:XValidation:rule="has(self.cron) != has(self.interval)",message="set exactly one of cron or interval"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || has(self.cron)",message="timeZone applies only to cron schedules",fieldPath=".timeZone"
// +kubebuilder:validation:XValidation:rule="!has(self.jitter) || !has(self.interval) || !self.jitter.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.interval.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.jitter) < duration(self.interval)",message="jitter must be shorter than interval",fieldPath=".jitter"
type SchedulePolicySpec struct {
	// cron is when backups run, as a cron expression of 5 fields (minute hour
	// day-of-month month day-of-week), e.g. "0 2 * * *", or one of @hourly,
	// @daily, @weekly, @monthly.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(hourly|daily|weekly|monthly)|[0-9A-Za-z*,/?-]+( [0-9A-Za-z*,/?-]+){4})$')",message="cron must have 5 fields separated by single spaces (minute hour day-of-month month day-of-week), e.g. '0 2 * * *', or be one of @hourly, @daily, @weekly, @monthly"
	// +optional
	Cron string `json:"cron,omitempty"`

	// timeZone is the IANA time zone cron is read in, e.g. Europe/Berlin; unset means UTC.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$')",message="timeZone must be an IANA time zone name such as Europe/Berlin or UTC"
	// +optional
	TimeZone string `json:"timeZone,omitempty"`

	// interval runs backups this long after the previous run started, instead of cron.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="interval must be a duration such as 30m or 6h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('8760h'))",message="interval must be between 1m and 8760h (1 year)"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// jitter spreads the backups of one run over a window of this length, so a
	// schedule that covers many clusters does not start them all at once. Keep it
	// shorter than the time between runs.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="jitter must be a duration such as 0s, 5m or 1h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('12h')",message="jitter must be at most 12h"
	// +optional
	Jitter *metav1.Duration `json:"jitter,omitempty"`

	// retention says how many scheduled backups to keep; unset keeps them until
	// their ttl expires.
	// +optional
	Retention *Retention `json:"retention,omitempty"`
}

// SchedulePolicyStatus says whether the policy can be used.
type SchedulePolicyStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase says whether the policy can be used.
	// +optional
	Phase ConfigPhase `json:"phase,omitempty"`
}

// SchedulePolicy says when scheduled backups run and how many are kept. Several
// BackupSchedules may share one.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spol,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Cron",type=string,JSONPath=".spec.cron"
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=".spec.interval"
// +kubebuilder:printcolumn:name="Keep Last",type=integer,JSONPath=".spec.retention.keepLast",priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type SchedulePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says when backups run and how many to keep.
	// +required
	Spec SchedulePolicySpec `json:"spec"`

	// status says whether the policy can be used.
	// +optional
	Status SchedulePolicyStatus `json:"status,omitempty"`
}

// SchedulePolicyList is a list of SchedulePolicies.
// +kubebuilder:object:root=true
type SchedulePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the SchedulePolicies.
	Items []SchedulePolicy `json:"items"`
}
