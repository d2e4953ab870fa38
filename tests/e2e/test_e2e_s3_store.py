"""`auditc run --store s3://…` against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from e2e_helpers import auditc
from moto.server import ThreadedMotoServer

from schemas import Store, verify_store

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def s3_store() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        fs = pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True
        )
        fs.create_dir("audits")
        try:
            yield f"s3://audits/runs?endpoint_override=127.0.0.1:{port}&scheme=http"
        finally:
            server.stop()


def test_run_writes_outputs_manifests_and_logs_to_an_object_store(
    project: Path, s3_store: str
) -> None:
    done = auditc(
        "-C", str(project), "run", "audit.yaml", "--select", "label-counts", "--store", s3_store
    )
    assert done.returncode == 0, done.stderr
    assert not (project / ".auditc").exists()
    store = Store.open(s3_store)
    manifests = {m.name: m for m in store.manifests()}
    assert sorted(manifests) == ["label-counts", "phrases"]
    method = manifests["label-counts"]
    assert method.status == "complete" and method.rows == 2 and method.log == "_logs/method.log"
    node = f"method/label-counts/{method.id}"
    files = store.list_files(node)
    assert {"_logs/method.log", "_manifest.json"} <= set(files)
    assert sorted(method.outputs) == [f for f in files if f != "_manifest.json"] != []
    # Every file's digest holds on the object store too, and the whole store verifies.
    assert all(store.hash_file(node, f) == d for f, d in method.outputs.items())
    assert verify_store(store) == []
    assert b"runners.methods" in store.read_bytes(node, "_logs", "method.log")
    assert store.open_dataset(node).to_table().num_rows == 2

    again = auditc(
        "-C", str(project), "run", "audit.yaml", "--select", "label-counts", "--store", s3_store
    )
    assert again.returncode == 0, again.stderr
    assert "Nothing to run: all 2 workflow nodes are complete in s3://audits/runs" in again.stdout
