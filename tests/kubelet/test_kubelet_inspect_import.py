"""An Evaluation imported from an Inspect AI log, from compiled manifests on the test cluster.

The import runs as a Job (fetch the log from the store → `runners.imports` → commit): what
it writes to the cluster's store must be what a local `auditc run` of the same spec writes,
and its manifest must record the log's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubelet_network import NodeNetwork
from kubelet_store import CREDENTIALS, S3Server
from kubelet_support import REPO, STORE_SECRET, auditc, describe, new_cluster, write_project

WRITE_LOG = REPO / "tests" / "fixtures" / "inspect" / "write_inspect_log.py"

SPEC = """\
kind: Evaluation
name: inspect-eval
spec:
  imported:
    path: logs/LOG
    columns: {sample_id: string, completion: string, score_includes: float64}
"""


READ = """\
import json, sys
from schemas import Store
store = Store.open(sys.argv[1], create=False)
[manifest] = [m for m in store.manifests() if m.name == "inspect-eval"]
table = store.open_dataset(f"evaluation/inspect-eval/{manifest.id}").to_table()
rows = table.sort_by([("_index_", "ascending"), ("_replication_", "ascending")]).to_pylist()
print(json.dumps({"status": manifest.status, "files": manifest.input_files, "rows": rows}))
"""


def _read(store: str, node: NodeNetwork | None = None) -> dict[str, Any]:
    """The imported Evaluation as a store holds it (read on the node for the cluster's)."""
    prefix = node.nsenter() if node is not None else []
    done = subprocess.run(
        [*prefix, sys.executable, "-c", READ, store],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **CREDENTIALS},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    read: dict[str, Any] = json.loads(done.stdout)
    return read


def test_an_imported_evaluation_runs_as_a_job(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    audit = tmp_path / "inspect"
    done = subprocess.run(
        [sys.executable, str(WRITE_LOG), str(audit / "logs"), "eval"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = Path(done.stdout.strip().splitlines()[-1])
    (audit / "audit.yaml").write_text(SPEC.replace("LOG", log.name))
    store = s3.uri("inspect")
    project = write_project(
        tmp_path / "project", audit, {"store": {"uri": store, "credentialsSecret": STORE_SECRET}}
    )
    auditc(project, "compile", "--target", "kubernetes", "--stack", "kubelet", "--out", "manifests")
    auditc(project, "push", "--stack", "kubelet", node=node)
    result = new_cluster(node, tmp_path / "cluster").apply(project / "manifests")
    assert result.succeeded, describe(result)
    [job] = result.jobs.values()
    [pod] = job.pods
    assert list(pod.containers) == ["fetch", "import", "commit"], describe(result)

    auditc(project, "run", "audits/inspect")
    local = _read(str(project / ".auditc"))
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    assert local["status"] == "complete" and len(local["rows"]) == 6
    assert local["files"] == {f"audits/inspect/logs/{log.name}": digest}
    assert _read(store, node) == local
