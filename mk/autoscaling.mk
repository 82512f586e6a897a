# Node autoscaling on the test control plane: Karpenter v1.15.0 with its kwok
# provider, built from source (its module asks for Go 1.26.9: that one build runs
# with GOTOOLCHAIN=go1.27.3, which the go command fetches through the module proxy).
#   autoscaling-build  the control plane and Karpenter, whatever the cache lacks
#   test-autoscaling   build, then pytest tests/autoscaling: pending echo pods bring
#                      NodeClaims and nodes, emptied nodes go, a node holding a
#                      session stays until it ends, the NodePool limit caps the nodes
#                      and claims past it are shed with 429; and the page (Chromium)
#                      shows a node Karpenter adds appear on its node strip
#   bench-autoscale    python -m bench.autoscale: a burst of claims against a small
#                      pool, nodes added and removed (figures in docs/autoscaling.md)
# Needs: what test-k8s needs (mk/k8s.mk), and the built page and Chromium (mk/frontend.mk).

TEST_TARGETS += test-autoscaling

.PHONY: autoscaling-build test-autoscaling bench-autoscale

autoscaling-build: venv
	$(BIN)/python -m scripts.controlplane build --autoscaling

test-autoscaling: autoscaling-build frontend-build chromium
	PINGPOD_E2E_REQUIRED=1 PINGPOD_CHROMIUM=$(CHROMIUM) $(BIN)/pytest tests/autoscaling

bench-autoscale: autoscaling-build
	$(BIN)/python -m bench.autoscale
