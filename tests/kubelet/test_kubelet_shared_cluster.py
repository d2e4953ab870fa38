"""Audits on a shared cluster: the settings of docs/kubernetes.md "Shared GPU clusters"
that change what pods do, executed from the compiled manifests.

The tutorial, asynchronously: its compiled manifests with a Kueue queue, workload
identity, NetworkPolicies, emptyDir limits and `waitForCompletion: false`.

Kueue cannot run here; what it does to a Job can: the Jobs are created suspended, a
suspended Job runs nothing (the test cluster fails it, never starts a pod), and Kueue's
admission is un-suspending it. After an asynchronous `pulumi up` every Job exists at
once, so the test cluster runs them all together: the order of the graph then rests on
each pod's `wait` init container, which holds it until its inputs are committed.
`auditc status` and `auditc wait` follow the run through the test cluster's API
(`kubelet_api`), as they follow a real one.

The llm-gpu audit with a shared model cache: one prefetch Job downloads the weights
from a Hub mirror (`kubelet_hub`, the stack's `hubEndpoint`) into the cache claim, and
the vLLM stand-in serves the evaluation offline from it, read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubelet_api import ApiServer
from kubelet_hub import HubServer
from kubelet_network import NodeNetwork
from kubelet_store import S3Server
from kubelet_support import (
    REPO,
    RUNNER_IMAGE,
    STORE_SECRET,
    auditc,
    describe,
    new_cluster,
    start_auditc,
    write_project,
)

TUTORIAL = REPO / "audits" / "tutorial"
QUEUE = "safety-audits"


def _jobs(manifests: Path) -> dict[Path, dict[str, Any]]:
    found = {}
    for path in sorted(manifests.glob("*-job-*.yaml")):
        found[path] = yaml.safe_load(path.read_text())
    return found


def _check_pod_shapes(jobs: dict[Path, dict[str, Any]], manifests: Path) -> None:
    """What the settings put in the manifests the cluster then runs."""
    policies = [yaml.safe_load(p.read_text()) for p in manifests.glob("*-networkpolicy-*.yaml")]
    deny = next(p for p in policies if p["metadata"]["name"] == "auditc-jobs-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"], "no ingress at all"
    selector = deny["spec"]["podSelector"]["matchLabels"]
    for job in jobs.values():
        assert job["spec"]["suspend"] is True
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
        pod = job["spec"]["template"]
        assert selector.items() <= pod["metadata"]["labels"].items(), "covered by default-deny"
        assert pod["spec"]["serviceAccountName"] == "auditc-audits"
        for volume in pod["spec"]["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"]["sizeLimit"], volume
        # The pod asks for what its disk-backed emptyDirs may hold, on one container.
        containers = [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
        asked = [c["resources"]["requests"].get("ephemeral-storage") for c in containers]
        assert len([a for a in asked if a]) == 1, asked


@pytest.mark.slow
def test_a_queued_asynchronous_run_completes_once_admitted(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    store = s3.uri("shared")
    project = write_project(
        tmp_path / "project",
        TUTORIAL,
        {
            "store": {"uri": store, "credentialsSecret": STORE_SECRET},
            "images": {
                "runner": RUNNER_IMAGE,
                "pullPolicy": "Never",
                "runnerPackages": ["alt-profanity-check==1.9.1"],
            },
            "scheduling": {"queueName": QUEUE, "cpu": {"nodeSelector": {"pool": "cpu"}}},
            "serviceAccount": {"name": "auditc-audits"},
            "scratch": {"inputs": "1Gi", "tmp": "1Gi"},
            "jobs": {"waitForCompletion": False},
        },
    )
    auditc(project, "compile", "--target", "kubernetes", "--stack", "kubelet", "--out", "manifests")
    auditc(project, "push", "--stack", "kubelet", node=node)
    manifests = project / "manifests"
    jobs = _jobs(manifests)
    assert len(jobs) == 2 + 2 * 2 + 5
    _check_pod_shapes(jobs, manifests)

    # Queued: nothing runs until admitted, and `auditc status` says so.
    cluster = new_cluster(node, tmp_path / "cluster")
    queued = cluster.apply(manifests, together=True)
    assert {j.reason for j in queued.jobs.values()} == {"Suspended"}
    assert not any(j.pods for j in queued.jobs.values())
    with ApiServer(node, cluster) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        follow = ["--stack", "kubelet", "--kubeconfig", kubeconfig]
        status = auditc(project, "status", *follow, node=node)
        nodes = [line.split() for line in status.stdout.splitlines()[1:-1]]
        assert {words[0] for words in nodes} == {"queued"}, status.stdout
        assert status.stdout.splitlines()[-1] == "9 queued (of 9 nodes)"

        # Kueue admits every Job (un-suspends it); the cluster runs them all at once,
        # and `auditc wait` follows them to the end.
        for path, job in jobs.items():
            job["spec"]["suspend"] = False
            path.write_text(yaml.safe_dump(job))
        log = tmp_path / "wait.log"
        waiting = start_auditc(
            project, "wait", *follow, "--interval", "1s", "--timeout", "15m", log=log, node=node
        )
        result = cluster.apply(manifests, together=True)
        assert result.succeeded, describe(result)
        assert waiting.wait(120) == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert any(" running" in line for line in lines), lines  # it saw the run go on
    assert lines[-1] == "9 complete (of 9 nodes)", lines
    assert len(result.jobs) == len(jobs)
    waits = {
        name: pod.containers["wait"].log()
        for name, job in result.jobs.items()
        for pod in job.pods
        if "wait" in pod.containers
    }
    # Every Job but the datasets' waits for its inputs; some really had to.
    assert len(waits) == len(jobs) - 2, sorted(waits)
    assert any("waiting for" in log for log in waits.values()), waits
    assert all("inputs ready after" in log for log in waits.values()), waits

    gates = auditc(project, "check", "--store", store, "--format", "json", node=node, check=False)
    assert gates.returncode == 1, gates.stderr  # the tutorial's FPR gate fails, as locally
    assert '"max_fpr_gap"' in gates.stdout


LLM_GPU = REPO / "audits" / "llm-gpu"
QWEN = "Qwen/Qwen2.5-1.5B-Instruct"
QWEN_FILES = {
    "config.json": b'{"model_type": "qwen2"}',
    "model.safetensors": bytes(4096),
    "tokenizer.json": b"{}",
    "README.md": b"not one of the Model's allow_patterns",
}


@pytest.mark.slow
def test_weights_are_downloaded_once_by_the_prefetch_job_and_served_offline(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    revision = yaml.safe_load_all((LLM_GPU / "system.yaml").read_text())
    commit = next(d for d in revision if d["kind"] == "Model")["spec"]["huggingface"]["revision"]
    with HubServer(node, QWEN, commit, QWEN_FILES) as hub:
        project = write_project(
            tmp_path / "project",
            LLM_GPU,
            {
                "store": {"uri": s3.uri("prefetch"), "credentialsSecret": STORE_SECRET},
                "select": ["qwen-on-refusal-prompts"],
                "modelCache": {"pvc": {"claimName": "models", "size": "1Gi"}},
                "hubEndpoint": hub.endpoint,
            },
        )
        auditc(project, "compile", "--stack", "kubelet", "--out", "manifests")
        auditc(project, "push", "--stack", "kubelet", node=node)
        result = new_cluster(node, tmp_path / "cluster").apply(project / "manifests")
        assert result.succeeded, describe(result)
        downloaded = hub.downloaded()

    (prefetch,) = [j for n, j in result.jobs.items() if n.endswith("-prefetch")]
    (pod,) = prefetch.pods
    assert f"{QWEN}@{commit} is in the cache" in pod.containers["prefetch"].log()
    # Once, by the prefetch Job, and only what the Model's allow_patterns take.
    assert sorted(downloaded) == ["config.json", "model.safetensors", "tokenizer.json"]

    (evaluation,) = [
        j
        for n, j in result.jobs.items()
        if n.startswith("qwen-on-refusal-prompts-") and not n.endswith("-commit")
    ]
    (pod,) = evaluation.pods
    server, client = pod.containers["server"], pod.containers["client"]
    # The stand-in refuses to start offline without the snapshot in HF_HUB_CACHE.
    assert f"weights of {QWEN} from /model-cache/hub/models--Qwen--Qwen2.5-1.5B-Instruct" in (
        server.log()
    )
    assert "(offline)" in server.log()
    assert client.exit_codes == [0] and "200 rows (0 resumed), 0 errors" in client.log()
