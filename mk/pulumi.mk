# The Pulumi program under the real engine, on the test control plane.
#   engine       build (or find cached) the Pulumi CLI and the Kubernetes provider
#                from source into ~/.cache/pingpod/bin/<component>-<version>/;
#                `python -m scripts.engine bindir` prints the directory holding both
#   test-engine  pytest tests/engine: preview, up, no-change preview and refresh,
#                the deployed app used by a real provisioner, an in-place update,
#                bad config, destroy (Automation API, file backend, no network)
# Needs: Go >= 1.26 (module proxy reachable); the control plane of mk/k8s.mk.

TEST_TARGETS += test-engine

.PHONY: engine test-engine

engine: venv
	$(BIN)/python -m scripts.engine build

test-engine: venv
	$(BIN)/python -m scripts.controlplane build
	$(BIN)/python -m scripts.engine build
	$(BIN)/pytest tests/engine -m "not node"
