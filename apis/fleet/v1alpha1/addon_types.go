package v1alpha1

// The contract between the hub and the spoke through OCM's add-on framework:
// the hub runs the add-on of this name, the spoke runs in its namespace,
// renews its Lease and reads its hub credential from the Secret OCM's
// registration agent writes there.
const (
	// AddOnName is the OCM add-on: the ClusterManagementAddOn, every
	// cluster's ManagedClusterAddOn, and the Lease the spoke renews in
	// AddOnNamespace to show it is healthy.
	AddOnName = "lifeboat"
	// AddOnNamespace is where the spoke runs on every cluster.
	AddOnNamespace = "lifeboat-system"
	// AddOnHubKubeconfigSecret is the Secret in AddOnNamespace holding the
	// spoke's kubeconfig for the hub (keys kubeconfig, tls.crt, tls.key),
	// written and renewed by OCM's registration agent.
	AddOnHubKubeconfigSecret = AddOnName + "-hub-kubeconfig"
)
