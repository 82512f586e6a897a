"""Kubernetes client and configuration: credentials and the echo pod template.

In a pod, the ServiceAccount's in-cluster credentials; elsewhere the
kubeconfig named by KUBECONFIG (read when the backend is made, not when the
client library is imported) or ~/.kube/config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kubernetes import client, config

from services.provisioner.backends.kubernetes.objects import Obj
from services.provisioner.errors import ConfigError

API_THREADS = 16  # the client blocks: API calls run in a pool of this size


def load_template(path: Path) -> Obj:
    """The echo pod template the App component renders (ECHO_POD_TEMPLATE)."""
    try:
        template = json.loads(path.read_text())
        if not isinstance(template, dict) or not template.get("spec", {}).get("containers"):
            raise ValueError("no spec.containers")
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "ECHO_POD_TEMPLATE", "a JSON pod template file with spec.containers", str(exc)
        ) from None
    return template


def api_client() -> client.ApiClient:
    configuration = client.Configuration()
    try:
        if "KUBERNETES_SERVICE_HOST" in os.environ:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG") or None,
                client_configuration=configuration,
            )
    except config.ConfigException as exc:
        raise ConfigError(
            "KUBECONFIG", "in-cluster credentials or a kubeconfig", str(exc)
        ) from None
    # One connection per API thread and watch, so none is dropped and re-dialled.
    configuration.connection_pool_maxsize = API_THREADS + 4
    return client.ApiClient(configuration)
