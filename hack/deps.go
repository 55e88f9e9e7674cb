//go:build tools

// Package hack keeps the module's pinned dependencies in go.mod before code imports them.
package hack

import (
	_ "github.com/Azure/azure-sdk-for-go/sdk/azcore"
	_ "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	_ "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	_ "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	_ "github.com/gardener/gardener/pkg/client/core/clientset/versioned"
	_ "github.com/onsi/gomega"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	_ "k8s.io/apimachinery/pkg/runtime"
	_ "k8s.io/client-go/kubernetes"
	_ "open-cluster-management.io/api/work/v1"
	_ "open-cluster-management.io/api/cluster/v1"
	_ "sigs.k8s.io/controller-runtime"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
)
