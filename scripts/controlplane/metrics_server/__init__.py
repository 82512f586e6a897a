"""metrics-server on the test control plane: the resource metrics API (``metrics.k8s.io``)
that the HorizontalPodAutoscaler controller in kube-controller-manager reads.

It scrapes kubelets, so it serves figures only with a real node (``real_node=True``),
where it runs as a pod: ``with running(cp, log=print) as server:`` installs it
(built by ``python -m scripts.controlplane build``) and removes it after. See
docs/autoscaling.md.
"""

from __future__ import annotations

from .manifests import API_SERVICE, METRIC_RESOLUTION
from .runner import MetricsServer, install, running, uninstall

__all__ = ["API_SERVICE", "METRIC_RESOLUTION", "MetricsServer", "install", "running", "uninstall"]
