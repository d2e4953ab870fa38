"""The test cluster's API server, as far as `auditc status` and `auditc wait` read it.

It serves `GET /apis/batch/v1/namespaces/<ns>/jobs?labelSelector=key=value`: the Jobs
of a `Cluster` as the API server shows them while they run (`Cluster.job_objects`), on
the node at `SERVICE_IP:API_PORT`, so that commands run with `NodeNetwork.nsenter()`
reach both it and the store, through a kubeconfig as they would reach a real cluster.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubelet_cluster import Cluster
from kubelet_network import SERVICE_IP, NodeHttpServer, NodeNetwork

__all__ = ["API_PORT", "ApiServer"]

API_PORT = 6443


class ApiServer(NodeHttpServer):
    """The Jobs of one cluster, read-only, over plain HTTP."""

    port = API_PORT

    def __init__(self, network: NodeNetwork, cluster: Cluster) -> None:
        super().__init__(network)
        self.cluster = cluster

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose current context is this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kubelet", "cluster": {"server": f"http://{SERVICE_IP}:{API_PORT}"}}
            ],
            "users": [{"name": "ci", "user": {"token": "kubelet-test"}}],
            "contexts": [{"name": "kubelet", "context": {"cluster": "kubelet", "user": "ci"}}],
            "current-context": "kubelet",
        }
        path.write_text(json.dumps(config))
        return path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cluster = self.cluster

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                prefix, namespace = "/apis/batch/v1/namespaces/", cluster.namespace
                if url.path != f"{prefix}{namespace}/jobs":
                    self.send_error(404)
                    return
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                key, _, value = selector.partition("=")
                items = [
                    job
                    for job in cluster.job_objects()
                    if not key or job["metadata"].get("labels", {}).get(key) == value
                ]
                body = json.dumps({"kind": "JobList", "apiVersion": "batch/v1", "items": items})
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
