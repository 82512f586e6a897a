# Kubernetes tests against a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok), built from source with Go
# and cached under ~/.cache/pingpod/bin/<component>-<version>/.
#   controlplane-build  build whatever the cache lacks (first run: minutes)
#   test-k8s            build, then pytest tests/k8s (the fixture starts and
#                       stops a control plane in a temporary directory)
#   controlplane-up     start one in ~/.cache/pingpod/cluster and print its
#                       admin kubeconfig; controlplane-down stops it
# Needs: Go >= 1.26 (module proxy reachable) and the openssl CLI.

TEST_TARGETS += test-k8s

.PHONY: controlplane-build controlplane-up controlplane-down test-k8s

controlplane-build: venv
	$(BIN)/python -m scripts.controlplane build

controlplane-up: controlplane-build
	$(BIN)/python -m scripts.controlplane up

controlplane-down: venv
	$(BIN)/python -m scripts.controlplane down

test-k8s: venv
	$(BIN)/python -m scripts.controlplane build
	$(BIN)/pytest tests/k8s
