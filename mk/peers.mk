# pingpod beside the warm-pool system users would pick instead: agent-sandbox v1.0.1
# (kubernetes-sigs/agent-sandbox), its controller built from source like the control plane.
#   peers-build  the control plane and agent-sandbox's controller, whatever the cache lacks
#   test-peers   build, then pytest tests/peers: the controller runs with its own
#                ServiceAccount and binds a warm claim and a cold one
#   bench-peers  python -m bench.peers: both systems on one control plane at upstream
#                flags, claims at 5/10/20/50 per second and a burst (figures in
#                docs/benchmarks.md)
# Needs: what test-k8s needs (mk/k8s.mk).

TEST_TARGETS += test-peers

.PHONY: peers-build test-peers bench-peers

peers-build: venv
	$(BIN)/python -m scripts.controlplane build --peers

test-peers: peers-build
	$(BIN)/pytest tests/peers

bench-peers: peers-build
	$(BIN)/python -m bench.peers
