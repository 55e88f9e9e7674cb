// Package restore recreates the objects of a Lifeboat backup in a cluster.
//
// Run verifies the whole backup before it changes anything, then writes the
// objects in dependency order. The policies below are what a restore does
// beyond "create what the backup holds"; the tests hold each of them.
//
// # Reading: verify, spool, then write
//
// The backup is one tar stream. Run reads it twice and holds neither read in
// memory: the first read (archive.Reader.Verify) checks every byte against
// backup.json; the second (Items, which checks again) cleans each object and
// spools it to a temporary file per priority class. Only once the second read
// has ended without error does the first write reach the cluster, so a
// truncated, changed or too new backup fails with nothing changed. Writing
// then reads the spool files class by class. Memory stays flat in the number
// of objects (what Run keeps per object is nothing, except the old UID of
// objects that others name as their owner); the spool needs about as much
// temporary disk as the objects' JSON.
//
// # Order
//
// CustomResourceDefinitions (then Run waits until each is Established and
// its resource is served), Namespaces, StorageClasses, PersistentVolumes,
// PersistentVolumeClaims, ServiceAccounts, ClusterRoles and Roles, their
// bindings, Secrets, ConfigMaps, LimitRanges and ResourceQuotas, everything
// else, and workloads last (Deployments, StatefulSets, DaemonSets,
// ReplicaSets, ReplicationControllers, Jobs, CronJobs, Pods). Within a class
// objects are written in parallel (Options.Workers), those without owner
// references first, so that an owner restored in the same class exists
// before its dependents.
//
// # Writing and existing objects
//
// With ExistingResourcePolicy Skip (the default) each object is created
// (POST, field manager Options.FieldManager): an object that exists is left
// exactly as it is and counted as skipped. A create is the atomic "create if
// absent" that Skip means; server-side apply cannot express it without a
// read first, which would race with other writers. With Update each object
// is server-side applied with force, so the restore takes ownership of the
// fields it sets and a later Update restore converges to the backup again.
//
// Two kinds of object are handled apart. The default ServiceAccount is made
// by the cluster in every new namespace, so whether it "exists" is a race:
// when the backed-up one carries anything a person set (image pull secrets,
// labels, annotations, automountServiceAccountToken) it is applied into the
// existing one whatever the policy. PersistentVolumes are never changed once
// they exist, whatever the policy (see below).
//
// # What is not restored
//
// Objects the cluster makes again or that describe this cluster only, each
// counted as excluded and summed up in one info line per reason: Pods,
// ReplicaSets, Jobs and ControllerRevisions with a controller owner reference
// (their controller recreates them); Endpoints and EndpointSlices managed by
// the Kubernetes endpoint controllers (those without the managed-by label,
// e.g. of a Service without a selector, are restored); service-account token
// Secrets; the kube-root-ca.crt ConfigMap; Events, Leases, Nodes, CSINodes,
// VolumeAttachments, CSIStorageCapacities; and Lifeboat's own objects
// (backup.lifeboat.dev, fleet.lifeboat.dev), which would start backups and
// restores of their own, but for PreBackupPods, which are a team's and
// start nothing by themselves.
//
// # What is dropped from each object
//
// status; metadata.uid, resourceVersion, generation, creationTimestamp,
// deletionTimestamp, deletionGracePeriodSeconds, managedFields and selfLink;
// the annotations deployment.kubernetes.io/revision, pv.kubernetes.io/bind-completed,
// pv.kubernetes.io/bound-by-controller, volume.kubernetes.io/selected-node,
// volume.kubernetes.io/storage-provisioner and its beta twin; the
// kubernetes.io/metadata.name label of Namespaces (the API server sets it);
// (kubectl.kubernetes.io/last-applied-configuration stays, so kubectl apply
// keeps working; restored into another namespace, the namespace inside it is
// mapped too); a Service's clusterIP, clusterIPs (unless "None": a headless Service stays
// headless) and healthCheckNodePort (nodePorts are kept: a person may have
// chosen them; a clash is an item error); a Pod's nodeName and ephemeral
// containers; a Job's generated selector and controller-uid labels (unless
// manualSelector). Owner references point to UIDs: a reference to an owner
// restored (or found existing) earlier in this restore is rewritten to the
// owner's new UID, any other is dropped, so that the garbage collector does
// not delete the restored object for want of its old owner.
//
// # Namespace mapping
//
// NamespaceMapping renames namespaces: metadata.namespace of every
// namespaced object, the name of Namespace objects, the namespace of
// ServiceAccount subjects in RoleBindings and ClusterRoleBindings, and a
// PersistentVolume's claimRef. A namespace that receives objects but whose
// Namespace object is not restored (not in the backup, or not selected) is
// created bare.
//
// # PersistentVolumes and their claims
//
// A PersistentVolume belongs to one claim; a restore must never give a
// volume that holds someone's data to another claim, nor create one that
// points at another cluster's disk.
//
//   - A backup taken on another cluster than Options.Cluster (a migration)
//     never has its PVs created: each is left out with a warning, and every
//     claim drops spec.volumeName, so that its StorageClass provisions it a
//     new, empty volume. The bind annotations are dropped from every claim
//     anyway (see above).
//   - Options.StorageClassMapping renames the StorageClass of restored
//     claims and PVs (spec.storageClassName and the beta
//     volume.beta.kubernetes.io/storage-class annotation), for clusters
//     whose classes have other names.
//   - On the backup's own cluster, a PV that does not exist (deleted) is created with
//     its claimRef kept, namespace mapped and uid/resourceVersion cleared: it
//     is pre-bound to the restored claim and nothing else can take it.
//   - A PV that exists is never changed, with one exception: a PV whose
//     claimRef names exactly the claim being restored (same namespace after
//     mapping, same name) but the UID of a claim that no longer exists (it
//     was retained when its claim was deleted) gets that stale
//     claimRef.uid cleared, so the restored claim binds to its volume again.
//     This is the restore of a deleted namespace on the same cluster; it does
//     not wait for the volume to show Released. A self-service restore does
//     this too: the volume names a claim of its own namespace.
//   - A PV that exists and belongs to another claim (e.g. the original claim
//     when restoring into a mapped namespace on the same cluster) is left
//     alone, with a warning.
//   - A claim keeps spec.volumeName only when that volume is pre-bound to it
//     (restored or rebound by this restore, or found with a claimRef naming
//     it); otherwise volumeName is dropped, with a warning, and the claim is
//     provisioned a new, empty volume by its storage class.
//
// # Selection
//
// Options.Selection filters by the names in the backup, before mapping, as
// the backup does: resources as resource or resource.group (a bare name
// means the core resource if there is one, else that resource in any
// group); the label selector applies to every object except the
// cluster-scoped ones Auto takes for what was selected; a Namespace object
// follows its namespace. Cluster-scoped objects: Exclude takes none, Include
// every one the filters allow, Auto (the default) those the selected
// namespaced objects need (the CRDs of their custom resources, the PVs and
// StorageClasses of their claims, the ClusterRoles of their role bindings),
// and acts as Include when no namespace is named.
//
// # Self-service
//
// With OnlyNamespace set the restore writes only into that namespace,
// whatever the selection, the mapping or the backup say: a namespaced object
// is restored only if its (mapped) namespace is OnlyNamespace; everything
// else, and every cluster-scoped object, is left out with a warning (the
// Namespace object of OnlyNamespace itself with an info line: it exists).
// A claim keeps its volumeName only if the volume already names it.
//
// # Hub tenants
//
// With Tenancy set the restore writes only what the tenant's grant allows:
// a namespaced object only if its (mapped) namespace is granted, a Namespace
// object only if it is, any other cluster-scoped object only if the grant
// allows cluster-scoped objects. The rest is left out with a warning.
package restore
