# A real node on the test control plane (kubelet, kube-proxy, containerd + runc, CNI):
# real pods on a bridge of this machine, beside the kwok nodes. Needs root.
#   node-tools   Debian's runc, CNI plugins, socat, iptables and nftables, installed
#                with apt-get only when missing (containerd, kubelet and kube-proxy are
#                built from source with the control plane: mk/k8s.mk)
#   test-node    pytest tests/node: `up --real-node`, real pods, no way off the
#                machine, kernel settings as found, and nothing left after `down`;
#                then, in the same session, the tests marked `node` elsewhere: the
#                `local` stack deployed by the real engine onto a real node with the
#                images built here (tests/engine/test_real_stack.py), the page on
#                it in Chromium (tests/e2e/test_real_pods.py), and its provisioner
#                scaled out and in by the HPA from metrics-server's figures
#                (tests/engine/test_real_hpa.py)
#   cluster-up   a control plane with a real node in ~/.cache/pingpod/cluster;
#                cluster-down removes it and everything it made on the host
#   demo-cluster the whole stack on a real node of this machine: images built here,
#                the `local` stack deployed by the real engine, the page through a
#                port-forward on HOST:PORT until Ctrl-C, then all of it removed

NODE_PACKAGES := runc containernetworking-plugins socat iptables nftables

TEST_TARGETS += test-node

.PHONY: node-tools test-node cluster-up cluster-down demo-cluster

node-tools:
	$(call apt-install,$(NODE_PACKAGES))

# In this order: the stack's last test destroys it, after the browser and the HPA have used it.
REAL_NODE_TESTS := tests/node tests/e2e/test_real_pods.py tests/engine/test_real_hpa.py \
	tests/engine/test_real_stack.py

test-node: venv node-tools image-tools frontend-build chromium
	$(BIN)/python -m scripts.controlplane build
	$(BIN)/python -m scripts.engine build
	PINGPOD_E2E_REQUIRED=1 PINGPOD_CHROMIUM=$(CHROMIUM) $(BIN)/pytest $(REAL_NODE_TESTS)

cluster-up: venv node-tools image-tools controlplane-build
	$(BIN)/python -m scripts.controlplane up --real-node

cluster-down: venv
	$(BIN)/python -m scripts.controlplane down

# State under ~/.cache/pingpod/demo-cluster unless DEMO_CLUSTER_DIR says otherwise.
DEMO_CLUSTER_DIR ?=

demo-cluster: venv node-tools image-tools controlplane-build engine
	$(BIN)/python -m scripts.localstack $(if $(DEMO_CLUSTER_DIR),--dir $(DEMO_CLUSTER_DIR))
