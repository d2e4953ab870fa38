"""The test cluster's object store: moto's S3 server on the node, at a service address.

It listens on `SERVICE_IP:9000` in the node's network namespace, so pods reach it
through their gateway (as pods reach MinIO through its Service) and commands run
with `NodeNetwork.nsenter()` reach it at the same URI.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from kubelet_network import SERVICE_IP, NodeNetwork, in_namespace

__all__ = ["CREDENTIALS", "S3_PORT", "S3Server"]

S3_PORT = 9000
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "kubelet-test",
    "AWS_SECRET_ACCESS_KEY": "kubelet-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""What the store's Secret holds (moto accepts any credentials)."""


class S3Server:
    """moto's server in the node's network namespace, with one bucket."""

    def __init__(self, network: NodeNetwork, bucket: str, log: Path) -> None:
        self.network = network
        self.bucket = bucket
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def uri(self, prefix: str) -> str:
        """`s3://<bucket>/<prefix>?endpoint_override=…&scheme=http`."""
        return f"s3://{self.bucket}/{prefix}?endpoint_override={SERVICE_IP}:{S3_PORT}&scheme=http"

    def __enter__(self) -> S3Server:
        moto = Path(sys.executable).parent / "moto_server"
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                [*self.network.nsenter(), str(moto), "-H", SERVICE_IP, "-p", str(S3_PORT)],
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self._request("PUT", f"/{self.bucket}", timeout_s=60)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def _request(self, method: str, path: str, timeout_s: float) -> None:
        """Send one request from the node, retrying until the server is up."""
        errors: list[str] = []

        def send() -> None:
            with in_namespace(self.network.path):
                deadline = time.monotonic() + timeout_s
                while True:
                    connection = http.client.HTTPConnection(SERVICE_IP, S3_PORT, timeout=5)
                    try:
                        connection.request(method, path)
                        status = connection.getresponse().status
                        if status < 300:
                            return
                        errors.append(f"HTTP {status}")
                    except OSError as exc:
                        errors.append(str(exc))
                    finally:
                        connection.close()
                    if time.monotonic() > deadline or (
                        self.process and self.process.poll() is not None
                    ):
                        raise RuntimeError(
                            f"moto did not answer {method} {path}: {errors[-3:]}; see {self.log}"
                        )
                    time.sleep(0.2)

        failure: list[BaseException] = []

        def target() -> None:
            try:
                send()
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
