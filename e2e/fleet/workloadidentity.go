package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Azure Workload Identity webhook as the fleet installs it on a cluster
// with a node, named as its upstream manifest names it.
const (
	WorkloadIdentityNamespace = "azure-workload-identity-system"
	wiWebhookName             = "azure-wi-webhook"
	wiWebhookService          = "azure-wi-webhook-webhook-service"
	// WorkloadIdentityLabel on a pod makes the webhook inject the identity.
	WorkloadIdentityLabel = "azure.workload.identity/use"
)

// InstallWorkloadIdentityWebhook runs the Azure Workload Identity mutating
// webhook (github.com/Azure/azure-workload-identity, built from the pinned
// module) as a pod on node's cluster and registers it, as its upstream
// manifest does: pods labelled azure.workload.identity/use=true get
// AZURE_CLIENT_ID (from their ServiceAccount's annotation), AZURE_TENANT_ID,
// AZURE_AUTHORITY_HOST and AZURE_FEDERATED_TOKEN_FILE, and the projected
// service-account token the kubelet refreshes. authorityHost is the Entra
// authority as pods reach it (a custom cloud, AzureStackCloud, as the webhook
// supports them).
func InstallWorkloadIdentityWebhook(ctx context.Context, cp *ControlPlane, image PodImage, tenantID, authorityHost string) error {
	ns := WorkloadIdentityNamespace
	serving, err := cp.CA.Serving(wiWebhookService, wiWebhookService+"."+ns+".svc")
	if err != nil {
		return err
	}
	cloud, err := json.Marshal(map[string]string{
		"name":                    "AzureStackCloud",
		"activeDirectoryEndpoint": authorityHost,
		"resourceManagerEndpoint": authorityHost,
	})
	if err != nil {
		return err
	}
	labels := map[string]string{"app.kubernetes.io/name": wiWebhookName}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName, Namespace: ns}},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: wiWebhookName},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: wiWebhookName, Namespace: ns}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName + "-server-cert", Namespace: ns},
			Data:       map[string][]byte{"tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName + "-cloud", Namespace: ns},
			Data:       map[string]string{"cloud.json": string(cloud)},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: wiWebhookService, Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(9443)}}},
		},
		wiDeployment(image, tenantID, labels),
	}
	for _, obj := range objs {
		if err := client.IgnoreAlreadyExists(cp.Client.Create(ctx, obj)); err != nil {
			return fmt.Errorf("installing the workload identity webhook: %w", err)
		}
	}
	if err := waitDeploymentAvailable(ctx, cp, ns, wiWebhookName); err != nil {
		return err
	}
	// Registered once it serves, so that no labelled pod is refused meanwhile.
	return client.IgnoreAlreadyExists(cp.Client.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName + "-mutating-webhook-configuration"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "mutation.azure-workload-identity.io",
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Name: wiWebhookService, Namespace: ns, Path: ptr.To("/mutate-v1-pod")},
				CABundle: cp.CA.CertPEM(),
			},
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			MatchPolicy:        ptr.To(admissionregistrationv1.Equivalent),
			ObjectSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{WorkloadIdentityLabel: "true"}},
			ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			SideEffects:        ptr.To(admissionregistrationv1.SideEffectClassNone),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}))
}

func wiDeployment(image PodImage, tenantID string, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: wiWebhookName, Namespace: WorkloadIdentityNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: wiWebhookName,
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:            "manager",
						Image:           image.Ref,
						ImagePullPolicy: corev1.PullNever,
						Args: []string{"--disable-cert-rotation", "--webhook-cert-dir=/certs", "--tls-min-version=1.2",
							"--health-addr=:9440", "--metrics-addr=:8095"},
						Env: []corev1.EnvVar{
							{Name: "AZURE_TENANT_ID", Value: tenantID},
							{Name: "AZURE_ENVIRONMENT", Value: "AzureStackCloud"},
							{Name: "AZURE_ENVIRONMENT_FILEPATH", Value: "/cloud/cloud.json"},
							{Name: "POD_NAMESPACE", Value: WorkloadIdentityNamespace},
						},
						Ports:                    []corev1.ContainerPort{{Name: "webhook", ContainerPort: 9443}},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(9440)}},
							PeriodSeconds: 1,
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "cert", MountPath: "/certs", ReadOnly: true}, {Name: "cloud", MountPath: "/cloud", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{
						{Name: "cert", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: wiWebhookName + "-server-cert"}}},
						{Name: "cloud", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: wiWebhookName + "-cloud"}}}},
					},
				},
			},
		},
	}
}

// waitDeploymentAvailable waits until namespace/name has an available replica
// and none unavailable (a replaced pod's successor is up).
func waitDeploymentAvailable(ctx context.Context, cp *ControlPlane, namespace, name string) error {
	var last error
	for {
		d := &appsv1.Deployment{}
		if last = cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); last == nil {
			if d.Status.AvailableReplicas > 0 && d.Status.UnavailableReplicas == 0 {
				return nil
			}
			last = fmt.Errorf("deployment %s/%s: %d of %d replicas available", namespace, name, d.Status.AvailableReplicas, d.Status.Replicas)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s/%s on %s: %w (%v)\n%s", namespace, name, cp.Name, ctx.Err(), last, DescribePods(context.Background(), cp, namespace))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// DescribePods says where the pods of namespace are, with the namespace's
// events, for failure messages.
func DescribePods(ctx context.Context, cp *ControlPlane, namespace string) string {
	var b strings.Builder
	pods := &corev1.PodList{}
	if err := cp.Client.List(ctx, pods, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: phase %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, ", container %s ready=%t restarts=%d state=%+v last=%+v", c.Name, c.Ready, c.RestartCount, c.State, c.LastTerminationState)
		}
		b.WriteString("\n")
	}
	events := &corev1.EventList{}
	_ = cp.Client.List(ctx, events, client.InNamespace(namespace))
	for _, e := range events.Items {
		fmt.Fprintf(&b, "event %s/%s %s: %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return b.String()
}
