"""The object-store path end to end, against moto's S3 server on 127.0.0.1.

`auditc push` uploads the inputs content-addressed; then each pod's steps run here as
the cluster would run them, from the very JSON files the compiled ConfigMaps carry
(only the pod's volume paths are mapped into a temporary directory): fetch and verify
inputs, ingest the dataset, serve the model and evaluate both shards, run a method,
commit manifests. Finally `Store.open("s3://…").manifests()` lists the results, as
`auditc report` reads them, and a tampered input makes the fetch step exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from k8s_helpers import copy_project, load_graph
from moto.server import ThreadedMotoServer

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig, Rendering, render_manifests
from compiler.cli.main import main
from runners.datasets import IngestConfig, ingest_dataset
from runners.evaluation import EvaluationConfig, run_evaluation
from runners.fetch import (
    CommitConfig,
    FetchConfig,
    blob_key,
    commit_node,
    fetch_inputs,
)
from runners.inference import free_port, wait_ready
from runners.methods import MethodConfig, run_method
from schemas import RunnerError, Store

BUCKET = "audit-results"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def s3_uri() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        fs = pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True
        )
        fs.create_dir(BUCKET)
        try:
            yield f"s3://{BUCKET}/ci?endpoint_override=127.0.0.1:{port}&scheme=http"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("s3") / "project")


class Pod:
    """A pod's filesystem mapped into a directory: `/work/...` paths in its configs point there."""

    def __init__(self, root: Path, data: dict[str, str]) -> None:
        self.root = root
        self.data = {name: text.replace('"/work/', f'"{root}/work/') for name, text in data.items()}

    def json(self, name: str) -> str:
        return self.data[name]

    def write(self, name: str) -> Path:
        path = self.root / name
        path.write_text(self.data[name])
        return path


def _pod(rendering: Rendering, graph: Graph, name: str, tmp: Path) -> Pod:
    node = graph[name]
    data = rendering.find("ConfigMap", f"{name}-{node.id[:10]}").manifest["data"]
    root = tmp / name
    root.mkdir(parents=True)
    return Pod(root, data)


def test_push_then_run_pods_against_s3(
    s3_uri: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["-C", str(project), "push", "--store", s3_uri])
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("4 uploaded, 0 already in the store")
    main(["-C", str(project), "push", "--store", s3_uri, "--dry-run"])
    assert capsys.readouterr().out.splitlines()[-1] == "0 would upload, 4 already in the store"

    graph = load_graph(project).select(["mean-score"])
    rendering = render_manifests(graph, KubernetesConfig.model_validate({"store": {"uri": s3_uri}}))

    # Dataset pod: fetch → ingest → commit.
    pod = _pod(rendering, graph, "phrases", tmp_path)
    fetched = fetch_inputs(FetchConfig.model_validate_json(pod.json("inputs.json")))
    assert fetched.files == 1
    ingest_dataset(IngestConfig.model_validate_json(pod.json("step.json")))
    commit_node(CommitConfig.model_validate_json(pod.json("commit.json")))

    # Evaluation: each shard's pod fetches the model module and serves it as the sidecar.
    evaluation = _pod(rendering, graph, "phrases-length", tmp_path / "commit")
    commit = CommitConfig.model_validate_json(evaluation.json("commit.json"))
    _run_shard(_pod(rendering, graph, "phrases-length", tmp_path / "shard-0"), 0)
    with pytest.raises(RunnerError, match="expected 8 rows .* found 4 rows"):
        commit_node(commit)  # shard 1 has not run: no manifest yet
    assert Store.open(s3_uri).read_manifest(graph["phrases-length"].store_path) is None
    _run_shard(_pod(rendering, graph, "phrases-length", tmp_path / "shard-1"), 1)
    commit_node(commit)

    # Method pod: fetch its module, read the evaluation from S3, write a Measurement.
    pod = _pod(rendering, graph, "mean-score", tmp_path)
    fetch_inputs(FetchConfig.model_validate_json(pod.json("inputs.json")))
    run_method(MethodConfig.model_validate_json(pod.json("step.json")))
    commit_node(CommitConfig.model_validate_json(pod.json("commit.json")))

    manifests = {m.name: m for m in Store.open(s3_uri).manifests()}
    assert set(manifests) == {"phrases", "phrases-length", "mean-score"}
    for name, manifest in manifests.items():
        assert manifest.status == "complete" and manifest.id == graph[name].id
    assert manifests["phrases"].rows == 8
    assert manifests["phrases-length"].rows == 8
    assert manifests["phrases-length"].metrics["errors"] == 0
    outputs = manifests["phrases-length"].outputs
    assert outputs and all(f.startswith("part-") for f in outputs), outputs
    assert manifests["mean-score"].rows == 1
    assert (
        manifests["mean-score"].upstream["Evaluation/phrases-length"] == graph["phrases-length"].id
    )
    store = Store.open(s3_uri)
    table = store.open_dataset(graph["mean-score"].store_path).to_table()
    assert table.column_names[:2] == ["mean", "above"]


def _run_shard(pod: Pod, shard: int) -> None:
    fetch_inputs(FetchConfig.model_validate_json(pod.json("inputs.json")))
    port = free_port()
    server = json.loads(pod.json("server.json"))
    server["port"] = port
    config_path = pod.root / "server.json"
    config_path.write_text(json.dumps(server))
    log = pod.root / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "runners.inference", str(config_path)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", 60, process, log=log)
        step = EvaluationConfig.model_validate_json(pod.json("step.json"))
        assert step.base_url == "http://127.0.0.1:8000"
        assert step.ready_url == "http://127.0.0.1:8000/health"
        config = step.model_copy(
            update={
                "base_url": f"http://127.0.0.1:{port}",
                "ready_url": f"http://127.0.0.1:{port}/health",
                "shard_index": shard,
            }
        )
        result = run_evaluation(config)
        assert result.status == "complete" and result.errors == 0
    finally:
        process.terminate()
        process.wait(10)


def test_fetch_refuses_tampered_or_missing_inputs(
    s3_uri: str, project: Path, tmp_path: Path
) -> None:
    tampered_uri = s3_uri.replace("/ci?", "/tampered?")
    main(["-C", str(project), "push", "--store", tampered_uri])
    graph = load_graph(project).select(["phrases"])
    config = KubernetesConfig.model_validate({"store": {"uri": tampered_uri}})
    pod = _pod(render_manifests(graph, config), graph, "phrases", tmp_path)
    digest = graph["phrases"].files["audits/data/phrases.jsonl"]
    store = Store.open(tampered_uri)
    store.write_bytes(b'{"text": "not what was hashed", "label": 0}\n', blob_key(digest))

    done = _fetch_entry_point(pod)
    assert done.returncode == 2, done.stderr
    assert f"expected {digest}" in done.stderr
    assert not (pod.root / "work" / "inputs" / "audits" / "data" / "phrases.jsonl").exists()

    store.fs.delete_file(store.path(blob_key(digest)))
    done = _fetch_entry_point(pod)
    assert done.returncode == 2, done.stderr
    assert f"run `auditc push --store {tampered_uri}`" in done.stderr


def _fetch_entry_point(pod: Pod) -> subprocess.CompletedProcess[str]:
    """`python -m runners.fetch inputs` as the pod's init container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "runners.fetch", "inputs", str(pod.write("inputs.json"))],
        capture_output=True,
        text=True,
        env={**os.environ, **FAKE_CREDENTIALS},
        timeout=60,
        check=False,
    )
