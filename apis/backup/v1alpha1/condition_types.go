package v1alpha1

// Condition types of spoke objects.
const (
	// ConditionReady is the summary: True when the object does what its spec asks
	// (a target is valid, a run succeeded or is progressing normally); False with a
	// reason below when it cannot.
	ConditionReady = "Ready"

	// ConditionValidated is True when the latest validation of a BackupTarget
	// succeeded; its reason classifies a failure.
	ConditionValidated = "Validated"

	// ConditionCompleted is True once a backup, restore, sync or deletion has
	// ended, whatever the outcome; the phase and Ready say how it ended.
	ConditionCompleted = "Completed"
)

// Reasons for a storage target that is not valid. The hub shows them unchanged
// in the per-cluster connections of a BackupLocation.
const (
	// ReasonAuthenticationFailed: no Entra ID token could be obtained for the
	// identity, e.g. a missing federated credential for this cluster's issuer,
	// a wrong clientID or tenantID.
	ReasonAuthenticationFailed = "AuthenticationFailed"

	// ReasonAuthorizationFailed: the storage account refused the identity (HTTP 403),
	// e.g. it lacks the Storage Blob Data Contributor role on the container.
	ReasonAuthorizationFailed = "AuthorizationFailed"

	// ReasonContainerNotFound: the storage account has no such container.
	ReasonContainerNotFound = "ContainerNotFound"

	// ReasonUnreachable: the blob endpoint or the Entra ID authority could not be
	// reached (DNS, network, TLS, timeouts).
	ReasonUnreachable = "Unreachable"

	// ReasonInvalidConfiguration: the spec cannot work as written, even though it
	// passed schema validation, e.g. an endpoint that does not serve blob storage.
	ReasonInvalidConfiguration = "InvalidConfiguration"

	// ReasonEndpointNotAllowed: the endpoint is neither the storage account's
	// own URL in an Azure cloud nor a private endpoint this cluster's admin
	// allowed; the spoke sends it no token.
	ReasonEndpointNotAllowed = "EndpointNotAllowed"

	// ReasonEncryptionKeyMissing: the target names an encryption key Secret
	// that this cluster does not hold, or a backup is encrypted and this
	// cluster's target holds no key: nothing was read or written.
	ReasonEncryptionKeyMissing = "EncryptionKeyMissing"

	// ReasonEncryptionKeyInvalid: the target's encryption key Secret does not
	// hold one age X25519 identity.
	ReasonEncryptionKeyInvalid = "EncryptionKeyInvalid"

	// ReasonValidationSucceeded: the probe blob was written, read and deleted.
	ReasonValidationSucceeded = "ValidationSucceeded"
)

// Reasons for backups, restores, syncs and deletions on a spoke.
const (
	// ReasonInProgress: the work is running.
	ReasonInProgress = "InProgress"

	// ReasonWaitingForStorage: a running backup has had no answer from the
	// storage service for a while; it goes on when storage answers, or fails
	// with StorageError.
	ReasonWaitingForStorage = "WaitingForStorage"

	// ReasonWaiting: the work may run but waits, Pending, for a run slot
	// (the spoke's --max-* flags) or for room in the restore spool; the
	// message says which.
	ReasonWaiting = "Waiting"

	// ReasonTooManyItems: the backup holds more objects than one restore
	// takes (the spoke's --restore-max-items); nothing was restored.
	ReasonTooManyItems = "TooManyItems"

	// ReasonInsufficientSpoolSpace: the restore needs more spool than the
	// spoke has (--restore-spool-size, or the free space of its file
	// system); nothing was restored.
	ReasonInsufficientSpoolSpace = "InsufficientSpoolSpace"

	// ReasonSucceeded: the work ended without errors.
	ReasonSucceeded = "Succeeded"

	// ReasonPartiallySucceeded: the work ended, but some items failed; the log names them.
	ReasonPartiallySucceeded = "PartiallySucceeded"

	// ReasonNothingRestored: a restore ended without restoring anything of a
	// backup that holds objects: each was left out or failed; the restore's
	// log says why for each.
	ReasonNothingRestored = "NothingRestored"

	// ReasonTargetNotFound: the spec names a BackupTarget that does not exist.
	ReasonTargetNotFound = "TargetNotFound"

	// ReasonTargetNotValid: the BackupTarget's latest validation failed.
	ReasonTargetNotValid = "TargetNotValid"

	// ReasonNamespaceNotAllowed: the object is in a namespace that the target's
	// allowedNamespaces does not select, or asks for more than its own namespace,
	// or names a namespace its spec.tenancy does not grant, or the hub sent it
	// for a hub namespace other than the one its BackupTarget was made for.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"

	// ReasonClusterScopedNotAllowed: the object asks for cluster-scoped
	// resources, which its spec.tenancy does not grant.
	ReasonClusterScopedNotAllowed = "ClusterScopedNotAllowed"

	// ReasonUpdateNotAllowed: the restore asks for existingResourcePolicy
	// Update, which its spec.tenancy does not grant.
	ReasonUpdateNotAllowed = "UpdateNotAllowed"

	// ReasonSourceClusterNotAllowed: a team's restore or deletion names a
	// backup of another cluster that the target's allowedSourceClusters does
	// not list, or the hub's backup of another cluster.
	ReasonSourceClusterNotAllowed = "SourceClusterNotAllowed"

	// ReasonRequesterRequired: a team's restore does not say who asked
	// (spec.requestedBy), so the spoke cannot write as them.
	ReasonRequesterRequired = "RequesterRequired"

	// ReasonBackupNotFound: the bucket holds no backup with that source and ID.
	ReasonBackupNotFound = "BackupNotFound"

	// ReasonBackupIncomplete: the backup has no readable backup.json (it never
	// finished, or its files do not match their checksums).
	ReasonBackupIncomplete = "BackupIncomplete"

	// ReasonBackupCorrupt: a file of the backup is missing, truncated, changed
	// or malformed: it does not match what backup.json records.
	ReasonBackupCorrupt = "BackupCorrupt"

	// ReasonBackupFormatUnsupported: the backup was written by a newer Lifeboat
	// in a format this one cannot read.
	ReasonBackupFormatUnsupported = "BackupFormatUnsupported"

	// ReasonEncryptionKeyMismatch: the backup is encrypted to another key than
	// the one this cluster's target holds: nothing was restored.
	ReasonEncryptionKeyMismatch = "EncryptionKeyMismatch"

	// ReasonExecRuleFailed: an exec action with onError Fail failed or timed out.
	ReasonExecRuleFailed = "ExecRuleFailed"

	// ReasonStorageError: reading or writing blobs failed after the target was validated.
	ReasonStorageError = "StorageError"

	// ReasonAborted: the work was stopped on purpose before it ended, e.g. a
	// forced deletion of the backup's data.
	ReasonAborted = "Aborted"

	// ReasonInterrupted: the spoke stopped (crashed, restarted, was upgraded)
	// while the work was running; what it wrote of a backup is deleted.
	ReasonInterrupted = "Interrupted"

	// ReasonClusterReadFailed: the cluster's resources could not be read
	// (discovery or listing failed).
	ReasonClusterReadFailed = "ClusterReadFailed"

	// ReasonRestoreFailed: a restore stopped for a cause that is neither the
	// backup's nor the storage's, e.g. the API server went away.
	ReasonRestoreFailed = "RestoreFailed"

	// ReasonHubUnreachable: the spoke could not write a catalog page to the hub.
	ReasonHubUnreachable = "HubUnreachable"

	// ReasonInternalError: the work hit a bug in the spoke (a panic, quoted in
	// the message) and stopped; the spoke kept running.
	ReasonInternalError = "InternalError"
)
