// Package commands reads the backup and restore commands that pods name in
// their annotations (K8up's backup commands, docs/commands.md).
package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// maxCommand bounds a command annotation's length.
const maxCommand = 4 << 10

// Command is a command a pod's annotations name.
type Command struct {
	Container string
	Command   []string
	// File is the output's file name (backups only).
	File string
}

// BackupAnnotations reads and checks the pod's backup command annotations; owner is
// its top controller (TopOwner). The error names the annotation at fault;
// the Command holds what could be read.
func BackupAnnotations(p corev1.Pod, owner string) (Command, error) {
	var c Command
	c.File = p.Annotations[backupv1alpha1.BackupFileAnnotation]
	if c.File == "" {
		name := p.Name
		if _, n, ok := strings.Cut(owner, "/"); ok {
			name = n
		}
		c.File = name + ".out"
	}
	if err := archive.ValidateCommandFile(c.File); err != nil {
		return c, fmt.Errorf("annotation %s: %v", backupv1alpha1.BackupFileAnnotation, err)
	}
	var err error
	if c.Container, err = container(p); err != nil {
		return c, err
	}
	if c.Command, err = shell(p.Annotations[backupv1alpha1.BackupCommandAnnotation]); err != nil {
		return c, fmt.Errorf("annotation %s: %v", backupv1alpha1.BackupCommandAnnotation, err)
	}
	return c, nil
}

// RestoreAnnotations reads and checks the pod's restore command annotation.
func RestoreAnnotations(p corev1.Pod) (Command, error) {
	var c Command
	var err error
	if c.Container, err = container(p); err != nil {
		return c, err
	}
	if c.Command, err = shell(p.Annotations[backupv1alpha1.RestoreCommandAnnotation]); err != nil {
		return c, fmt.Errorf("annotation %s: %v", backupv1alpha1.RestoreCommandAnnotation, err)
	}
	return c, nil
}

// container is the container a pod's commands run in: its
// backup-container annotation, or its first container.
func container(p corev1.Pod) (string, error) {
	c, set := p.Annotations[backupv1alpha1.BackupContainerAnnotation]
	if !set {
		if len(p.Spec.Containers) == 0 {
			return "", errors.New("the pod has no container")
		}
		return p.Spec.Containers[0].Name, nil
	}
	if !slices.ContainsFunc(p.Spec.Containers, func(x corev1.Container) bool { return x.Name == c }) {
		return c, fmt.Errorf("annotation %s: the pod has no container %q", backupv1alpha1.BackupContainerAnnotation, c)
	}
	return c, nil
}

// shell is an annotation's command as run: `sh -c <value>`, so that it may
// use pipes, quotes and environment variables; the container needs a shell.
func shell(value string) ([]string, error) {
	switch {
	case strings.TrimSpace(value) == "":
		return nil, errors.New("is empty")
	case len(value) > maxCommand:
		return nil, fmt.Errorf("is longer than %d bytes", maxCommand)
	case strings.ContainsRune(value, 0):
		return nil, errors.New("contains a NUL byte")
	}
	return []string{"sh", "-c", value}, nil
}

// TopOwner is the pod's top controller as "<Kind>/<name>": the Deployment
// of a ReplicaSet's pod, the CronJob of a Job's pod, else the pod's
// controller; "" for a pod that no controller owns.
func TopOwner(ctx context.Context, c client.Reader, p corev1.Pod) (string, error) {
	ref := metav1.GetControllerOf(&p)
	if ref == nil {
		return "", nil
	}
	var parent client.Object
	switch {
	case ref.Kind == "ReplicaSet" && strings.HasPrefix(ref.APIVersion, "apps/"):
		parent = &appsv1.ReplicaSet{}
	case ref.Kind == "Job" && strings.HasPrefix(ref.APIVersion, "batch/"):
		parent = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: ref.APIVersion, Kind: ref.Kind}}
	default:
		return ref.Kind + "/" + ref.Name, nil
	}
	err := c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, parent)
	if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("reading the owner of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if err == nil && parent.GetUID() == ref.UID {
		if top := metav1.GetControllerOf(parent); top != nil {
			return top.Kind + "/" + top.Name, nil
		}
	}
	return ref.Kind + "/" + ref.Name, nil
}
