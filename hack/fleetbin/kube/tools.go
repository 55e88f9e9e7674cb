//go:build tools

// Package kube pins the Kubernetes control-plane binaries the local fleet runs.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
