# Lifeboat. `make demo` and `make test` do everything on a fresh machine.
SHELL := /usr/bin/env bash
export GOFLAGS ?= -mod=mod
export GONOSUMDB ?= k8s.io,sigs.k8s.io,open-cluster-management.io,github.com/gardener
CONTROLLER_GEN := go tool controller-gen

.PHONY: all
all: generate manifests build

##@ Generation

.PHONY: generate
generate: ## Generate deepcopy code for both API groups.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./apis/...

.PHONY: manifests
manifests: ## Generate CRDs and each manager's RBAC into the charts.
	$(CONTROLLER_GEN) crd paths=./apis/fleet/... output:crd:dir=charts/lifeboat-hub/crds
	$(CONTROLLER_GEN) crd paths=./apis/backup/... output:crd:dir=charts/lifeboat-spoke/crds
	go run ./hack/crdtrim charts/lifeboat-spoke/crds/backup.lifeboat.dev_prebackuppods.yaml spec.pod.spec
	$(CONTROLLER_GEN) rbac:roleName=lifeboat-hub paths=./hub/... output:rbac:dir=charts/lifeboat-hub/templates
	$(CONTROLLER_GEN) rbac:roleName=lifeboat-spoke paths="./spoke;./spoke/crds;./spoke/reconcilers/..." output:rbac:dir=charts/lifeboat-spoke/templates
	$(CONTROLLER_GEN) rbac:roleName=lifeboat-spoke-restore paths=./spoke/restore output:rbac:dir=charts/lifeboat-spoke/templates/restore

.PHONY: verify
verify: generate manifests ## Fail when generated files or formatting drift.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...
	@git diff --exit-code -- apis charts || { echo "generated files are out of date: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- apis charts)" || { git status --porcelain -- apis charts; echo "untracked generated files: commit them"; exit 1; }

##@ Build

.PHONY: build
build: ## Build the hub, spoke, CLI and fleet binaries into bin/.
	go build -o bin/lifeboat-hub ./hub
	go build -o bin/lifeboat-spoke ./spoke
	go build -o bin/lifeboat ./hub/cmd/lifeboat
	ln -sf lifeboat bin/kubectl-lifeboat
	go build -o bin/ ./e2e/fleet/cmd/...

.PHONY: images
images: ## Build reproducible image tarballs of the hub, spoke and pause into bin/images/ (no Docker).
	go run ./images/cmd/lifeboat-images -out bin/images

.PHONY: fleet-bin
fleet-bin: ## Build the test fleet's heavy binaries into ~/.cache/lifeboat (cached by version).
	hack/fleet-bin.sh

##@ Test and demo

.PHONY: test
test: verify fleet-bin images ## Unit, integration and end-to-end tests (after verify).
	go test -count=1 -timeout 45m ./...

.PHONY: demo
demo: fleet-bin images ## Start the local fleet and show it.
	go run ./e2e/fleet/cmd/lifeboat-fleet demo

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
