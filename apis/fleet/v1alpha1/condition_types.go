package v1alpha1

// Condition types of hub objects. Spoke outcomes come back with the spoke's
// reasons unchanged (see the reasons in apis/backup/v1alpha1).
const (
	// ConditionReady is the summary: True when the object does what its spec asks;
	// False with a reason below when it cannot.
	ConditionReady = "Ready"

	// ConditionValidated is True on a BackupLocation that is valid on at least one
	// selected cluster.
	ConditionValidated = "Validated"

	// ConditionDispatched is True when the spoke objects for this hub object were
	// handed to the work agent of every cluster concerned.
	ConditionDispatched = "Dispatched"

	// ConditionRegistered is True on a BackupCluster registered with Open Cluster
	// Management (ManagedCluster accepted, cluster namespace and RBAC in place).
	ConditionRegistered = "Registered"

	// ConditionAvailable is True on a BackupCluster whose lifeboat add-on is Available.
	ConditionAvailable = "Available"

	// ConditionHubAccess is True on a BackupCluster whose spoke OCM registered
	// with the hub: its permissions applied and its certificate issued.
	ConditionHubAccess = "HubAccess"

	// ConditionDeleting is set on a Backup being deleted; False with reason
	// NoValidCluster while no cluster can delete its data.
	ConditionDeleting = "Deleting"

	// ConditionExpired is True on a Backup whose ttl has passed; reason
	// KeptAsNewest while it is kept because it is the newest restorable
	// backup of its cluster and selection.
	ConditionExpired = "Expired"

	// ConditionCompleted is True once a backup, restore or sync has ended,
	// whatever the outcome.
	ConditionCompleted = "Completed"
)

// Reasons of hub conditions.
const (
	// ReasonLocationNotFound: the spec names a BackupLocation that does not exist.
	ReasonLocationNotFound = "LocationNotFound"

	// ReasonNoInventory: the cluster's spoke has not reported its namespaces
	// yet, so its protection report has no verdicts.
	ReasonNoInventory = "NoInventory"

	// ReasonInventoryRejected: the cluster's namespace inventory failed the
	// hub's checks; the report's message says which.
	ReasonInventoryRejected = "InventoryRejected"

	// ReasonLocationNotValid: the location is not Valid for the cluster; the
	// condition's message carries the cluster's own reason.
	ReasonLocationNotValid = "LocationNotValid"

	// ReasonClusterNotAllowed: the location's clusters and clusterSelector do not
	// select the cluster, or the cluster is in no ManagedClusterSet bound to
	// the object's namespace.
	ReasonClusterNotAllowed = "ClusterNotAllowed"

	// ReasonNamespaceNotAllowed: the object would back up or restore into a
	// spoke namespace that the BackupTenant of its hub namespace does not
	// grant (or there is no BackupTenant).
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"

	// ReasonClusterScopedNotAllowed: the object asks for cluster-scoped
	// resources, which the BackupTenant of its hub namespace does not grant.
	ReasonClusterScopedNotAllowed = "ClusterScopedNotAllowed"

	// ReasonUpdateNotAllowed: a Restore asks for existingResourcePolicy Update,
	// which the BackupTenant of its hub namespace does not grant.
	ReasonUpdateNotAllowed = "UpdateNotAllowed"

	// ReasonClusterNotFound: no BackupCluster has that name.
	ReasonClusterNotFound = "ClusterNotFound"

	// ReasonClusterOffline: the cluster's work agent has not reported recently.
	ReasonClusterOffline = "ClusterOffline"
	// ReasonTimeout: a Backup's run did not finish within its timeout and was stopped.
	ReasonTimeout = "Timeout"

	// ReasonClusterUnmanaged: the cluster is no longer managed (its shoot is gone
	// or no longer selected), so nothing is sent to it.
	ReasonClusterUnmanaged = "ClusterUnmanaged"

	// ReasonNoClustersSelected: a selector matches no cluster, or a Placement
	// decides for none.
	ReasonNoClustersSelected = "NoClustersSelected"

	// ReasonNoValidCluster: no cluster has a Valid connection to the location, so
	// nothing can reach its data. A Backup deletion waits in DeletePending; force
	// it with the annotation fleet.lifeboat.dev/force-delete: "true".
	ReasonNoValidCluster = "NoValidCluster"

	// ReasonLimitedAvailability: the location is valid on some selected clusters only.
	ReasonLimitedAvailability = "LimitedAvailability"

	// ReasonTooManyClusters: a BackupLocation selects more clusters than its
	// one reconcile may serve (MaxLocationClusters).
	ReasonTooManyClusters = "TooManyClusters"

	// ReasonDispatchFailed: the ManifestWork for a cluster could not be written.
	ReasonDispatchFailed = "DispatchFailed"

	// ReasonBackupNotFound: a Restore names a Backup that does not exist.
	ReasonBackupNotFound = "BackupNotFound"

	// ReasonBackupNotRestorable: a Restore names a Backup that did not end in
	// Success or PartialSuccess.
	ReasonBackupNotRestorable = "BackupNotRestorable"

	// ReasonExecRuleNotFound: a Backup names an ExecRule that does not exist.
	ReasonExecRuleNotFound = "ExecRuleNotFound"

	// ReasonExecRuleInvalid: an ExecRule cannot be used as written (e.g. an
	// invalid pod selector), or not where a Backup uses it (an executionPolicy
	// in a pre rule, more than 16 actions in a stage).
	ReasonExecRuleInvalid = "ExecRuleInvalid"

	// ReasonExecRuleValid: an ExecRule can be used.
	ReasonExecRuleValid = "ExecRuleValid"

	// ReasonPolicyNotFound: a BackupSchedule names a SchedulePolicy that does not exist.
	ReasonPolicyNotFound = "PolicyNotFound"

	// ReasonInvalidSchedule: a SchedulePolicy's cron expression or time zone does
	// not parse, though it has the right shape.
	ReasonInvalidSchedule = "InvalidSchedule"

	// ReasonPolicyValid: a SchedulePolicy parses and can be used.
	ReasonPolicyValid = "PolicyValid"

	// ReasonScheduled: a BackupSchedule backs up its clusters at every run.
	ReasonScheduled = "Scheduled"

	// ReasonSuspended: a BackupSchedule is suspended; no new backups are made.
	ReasonSuspended = "Suspended"

	// ReasonPlacementNotFound: the OCM Placement that placementRef names does
	// not exist in the object's namespace.
	ReasonPlacementNotFound = "PlacementNotFound"

	// ReasonInvalidSelector: a label selector has an invalid key, operator or value.
	ReasonInvalidSelector = "InvalidSelector"

	// ReasonWaitingForSync: another sync of the same storage account and container
	// is running; this one starts when it ends.
	ReasonWaitingForSync = "WaitingForSync"

	// ReasonSecretNotFound: a ClusterDiscovery's kubeconfig Secret or key is missing.
	ReasonSecretNotFound = "SecretNotFound"

	// ReasonGardenerUnreachable: the Gardener API refused or did not answer.
	ReasonGardenerUnreachable = "GardenerUnreachable"

	// ReasonCatalogRejected: a catalog page or entry failed the hub's checks and
	// was not imported.
	ReasonCatalogRejected = "CatalogRejected"

	// ReasonBackupsUnreadable: the cluster that listed the container skipped
	// folders it could not read as backups (damaged or unreadable backup.json,
	// a newer format, a backup.json naming another folder); the sync's
	// rejections name them with why.
	ReasonBackupsUnreadable = "BackupsUnreadable"

	// ReasonForeignNamespace: a catalog entry names a hub Backup of another
	// namespace than the sync's; it was not imported, and the sync's message
	// names it.
	ReasonForeignNamespace = "ForeignNamespace"

	// ReasonForceDeleted: the hub record was force-deleted; the data is purged
	// once a cluster can reach the location.
	ReasonForceDeleted = "ForceDeleted"

	// ReasonBackupIDMismatch: the cluster fed back another backup ID than the
	// one the hub dispatched; the Backup failed and nothing else of that
	// feedback was recorded.
	ReasonBackupIDMismatch = "BackupIDMismatch"

	// ReasonSyncConflict: a Backup already has the name an import would give
	// it, but the hub did not create it for that import; it was not adopted.
	ReasonSyncConflict = "SyncConflict"
)

// Reasons of a hub Backup's Expired condition.
const (
	// ReasonKeptAsNewest: the ttl has passed, but the Backup is the newest
	// restorable backup of its cluster and selection in its namespace; it is
	// deleted once a newer one is restorable (or by hand).
	ReasonKeptAsNewest = "KeptAsNewest"
	// ReasonTTLExpired: the ttl has passed and the Backup is being deleted.
	ReasonTTLExpired = "TTLExpired"
)

// Reasons of a hub Backup's Deleting condition (besides ReasonNoValidCluster
// and ReasonLocationNotFound, which leave it DeletePending).
const (
	// ReasonDeletingData: a BackupDeletion was sent to a cluster with a Valid
	// connection to the location; the Backup goes when the cluster reports
	// the data deleted.
	ReasonDeletingData = "DeletingData"
	// ReasonForceDeleteRefused: fleet.lifeboat.dev/force-delete was set while
	// a cluster has a Valid connection to the location, so the data is
	// deleted normally instead.
	ReasonForceDeleteRefused = "ForceDeleteRefused"
	// ReasonDeletionFailed: the cluster refused or failed the BackupDeletion;
	// the message quotes its reason. The Backup stays DeletePending.
	ReasonDeletionFailed = "DeletionFailed"
	// ReasonDeletionRetrying: the cluster's BackupDeletion failed on storage
	// and is retried (the cluster validates its connection again); the
	// message quotes the storage error. The Backup stays Deleting.
	ReasonDeletionRetrying = "DeletionRetrying"
	// ReasonDataDeleted: the cluster deleted the data (or found none); the
	// hub record goes.
	ReasonDataDeleted = "DataDeleted"
)

// Conditions and reasons of discovery.
const (
	// ConditionShootReady is set on a BackupCluster by discovery: False (with
	// one of the discovery package's NotReady* reasons) while its shoot is hibernated,
	// being deleted or its last operation did not succeed.
	ConditionShootReady = "ShootReady"
	// ReasonShootReconciled: the shoot's last operation succeeded.
	ReasonShootReconciled = "ShootReconciled"
	// ReasonClusterRegistered: the ManagedCluster is accepted, and the cluster
	// namespace and the work agent's RBAC exist.
	ReasonClusterRegistered = "ClusterRegistered"
	// ReasonInvalidKubeconfig: the kubeconfig Secret holds no usable kubeconfig.
	ReasonInvalidKubeconfig = "InvalidKubeconfig"
	// ReasonDiscoverySucceeded: every selected shoot was onboarded or skipped on purpose.
	ReasonDiscoverySucceeded = "DiscoverySucceeded"
	// ReasonOnboardingFailed: some selected shoots could not be onboarded.
	ReasonOnboardingFailed = "OnboardingFailed"
)

// Reasons of a BackupCluster's Available condition, read from the cluster's
// lifeboat ManagedClusterAddOn (OCM's add-on framework: Available while the
// spoke renews its add-on Lease).
const (
	// ReasonAddOnAvailable: the add-on is Available; the cluster is Online.
	ReasonAddOnAvailable = "AddOnAvailable"
	// ReasonAddOnUnavailable: the add-on is not Available (its message is
	// quoted); the cluster is Offline, or Pending if it never was Online.
	ReasonAddOnUnavailable = "AddOnUnavailable"
	// ReasonAddOnNotInstalled: the cluster has no lifeboat
	// ManagedClusterAddOn: the add-on's placement does not select it.
	ReasonAddOnNotInstalled = "AddOnNotInstalled"
	// ReasonWaitingForAgent: the add-on is installed and has not reported
	// yet; the cluster is Pending.
	ReasonWaitingForAgent = "WaitingForAgent"
	// ReasonHubAccessGranted: OCM registered the spoke with the hub: its hub
	// credential is issued and may write BackupCatalogs in the cluster namespace.
	ReasonHubAccessGranted = "HubAccessGranted"
	// ReasonHubAccessDenied: the spoke's registration with the hub is not
	// (or no longer) in place; the message quotes the add-on's condition.
	ReasonHubAccessDenied = "HubAccessDenied"
)

// ShootLabelsAnnotation on a BackupCluster lists the label keys discovery
// copied from the shoot, so that a label removed from the shoot is removed too.
const ShootLabelsAnnotation = "fleet.lifeboat.dev/shoot-labels"

// Reasons of BackupLocations.
const (
	// ReasonLocationConflict: another namespace's BackupLocation already uses the
	// same storage account, container and prefix (or a prefix inside it or around
	// it), so this one would let one tenant read another's backups.
	ReasonLocationConflict = "LocationConflict"
)

// Reasons of hub Backups.
const (
	// ReasonWaitingForLocation: the location has not finished validating on
	// the cluster; the backup starts when it is Valid, and fails if it is not.
	ReasonWaitingForLocation = "WaitingForLocation"
	// ReasonWaitingForCluster: the ApplicationBackup was sent, and the cluster
	// has not reported on it yet.
	ReasonWaitingForCluster = "WaitingForCluster"
	// ReasonDispatched: the ApplicationBackup was handed to the cluster's work agent.
	ReasonDispatched = "Dispatched"
)
