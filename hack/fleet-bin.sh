#!/usr/bin/env bash
# Builds the heavy binaries of the local test fleet from pinned Go modules into a
# cache outside the repo, keyed by version, and reuses them when present.
#   hack/fleet-bin.sh [component...]   (default: all)
# Components: kube (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and the OCM work agent, from one module so shared packages compile
# once), ocm (OCM's registration, placement and add-on manager, from the same
# module dir, so they reuse the packages kube compiled; registration through
# the small main in hack/fleetbin/kube/registration), etcd, wiwebhook (the
# Azure Workload Identity webhook), garden (Gardener test environment),
# azurite (npm).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
export GONOSUMDB="${GONOSUMDB:-k8s.io,sigs.k8s.io,open-cluster-management.io,github.com/gardener}" GOFLAGS=-mod=mod CGO_ENABLED=0

KUBE_VERSION=v1.35.5
ETCD_VERSION=v3.6.6
OCM_VERSION=v1.2.0
GARDENER_VERSION=v1.145.0
AZURITE_VERSION=3.37.0
WI_VERSION=v1.6.0

# build DIR OUT LDFLAGS PKG... builds PKGs of the module in DIR into OUT, once.
build() {
  local dir="$1" out="$2" ldflags="$3"; shift 3
  if [[ -f "$out/.done" ]]; then echo "fleet-bin: $out (cached)"; return; fi
  echo "fleet-bin: building $out"
  mkdir -p "$out"
  (cd "$ROOT/hack/fleetbin/$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/" "$@")
  touch "$out/.done"
}

kube() {
  build kube "$CACHE/kube-$KUBE_VERSION-ocm-$OCM_VERSION" \
    "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    open-cluster-management.io/ocm/cmd/work
}
ocm() {
  build kube "$CACHE/ocm-$OCM_VERSION-kube-$KUBE_VERSION" "-s -w" \
    open-cluster-management.io/ocm/cmd/placement open-cluster-management.io/ocm/cmd/addon
  # OCM's cmd/registration with a flag for how often its agent looks at its
  # certificates (hack/fleetbin/kube/registration).
  build kube "$CACHE/ocm-registration-$OCM_VERSION-kube-$KUBE_VERSION" "-s -w" ./registration
}
etcd() { build etcd "$CACHE/etcd-$ETCD_VERSION" "-s -w" .; }
wiwebhook() { build wiwebhook "$CACHE/azure-wi-webhook-$WI_VERSION" "-s -w" github.com/Azure/azure-workload-identity/cmd/webhook; }
garden() { build garden "$CACHE/garden-$GARDENER_VERSION" "-s -w" .; }
azurite() {
  local out="$CACHE/azurite-$AZURITE_VERSION"
  if [[ -f "$out/.done" ]]; then echo "fleet-bin: $out (cached)"; return; fi
  echo "fleet-bin: installing azurite@$AZURITE_VERSION"
  mkdir -p "$out"
  (cd "$out" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null)
  touch "$out/.done"
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(etcd kube ocm wiwebhook garden azurite)
for c in "${components[@]}"; do "$c"; done
