"""The test cluster's Hugging Face Hub: the few routes `huggingface_hub` downloads through.

A stack points its pods at a Hub mirror with `auditc:hubEndpoint` (`HF_ENDPOINT`); here
the mirror is this server, on the node at `SERVICE_IP:HUB_PORT`, so pods reach it
through their gateway as they reach the store. It serves one repository at one commit:

- `GET /api/models/<repo>/tree/<commit>` — the file listing `snapshot_download` reads;
- `GET /api/models/<repo>/revision/<rev>` — a branch or tag resolved to the commit;
- `HEAD`/`GET /<repo>/resolve/<commit>/<path>` — a file, with `X-Repo-Commit` and `ETag`.

Every request is recorded, so a test can say who downloaded what.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from kubelet_network import SERVICE_IP, NodeHttpServer, NodeNetwork

__all__ = ["HUB_PORT", "HubServer"]

HUB_PORT = 8080


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer(NodeHttpServer):
    """One repository at one commit, served in the node's network namespace."""

    port = HUB_PORT

    def __init__(self, network: NodeNetwork, repo: str, commit: str, files: Mapping[str, bytes]):
        super().__init__(network)
        self.repo = repo
        self.commit = commit
        self.files = dict(files)
        self.requests: list[tuple[str, str]] = []

    @property
    def endpoint(self) -> str:
        return f"http://{SERVICE_IP}:{HUB_PORT}"

    def downloaded(self) -> list[str]:
        """Paths of the files served with GET, in order."""
        prefix = f"/{self.repo}/resolve/{self.commit}/"
        return [
            unquote(p)[len(prefix) :]
            for m, p in self.requests
            if m == "GET" and p.startswith(prefix)
        ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, body: Any) -> None:
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def _missing(self, code: str) -> None:
                self._send(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code})

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                hub.requests.append((self.command, self.path))
                path = unquote(urlsplit(self.path).path)
                api = re.fullmatch(r"/api/models/(.+?)/(tree|revision)/([^/]+)(/.*)?", path)
                if api is not None:
                    repo, route, revision, _ = api.groups()
                    if repo != hub.repo:
                        return self._missing("RepoNotFound")
                    if revision not in (hub.commit, "main"):
                        return self._missing("RevisionNotFound")
                    if route == "revision":
                        siblings = [{"rfilename": name} for name in hub.files]
                        return self._json({"id": repo, "sha": hub.commit, "siblings": siblings})
                    return self._json(
                        [
                            {"type": "file", "path": name, "size": len(data), "oid": _git_oid(data)}
                            for name, data in hub.files.items()
                        ]
                    )
                resolve = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
                if resolve is not None:
                    repo, revision, name = resolve.groups()
                    if repo != hub.repo or revision != hub.commit or name not in hub.files:
                        return self._missing("EntryNotFound")
                    data = hub.files[name]
                    headers = {
                        "X-Repo-Commit": hub.commit,
                        "ETag": f'"{_git_oid(data)}"',
                        "Content-Type": "application/octet-stream",
                    }
                    return self._send(200, data, headers)
                self._missing("NotFound")

        return Handler
