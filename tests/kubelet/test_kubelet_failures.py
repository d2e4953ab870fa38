"""Compiled manifests on the test cluster when things go wrong — and the probe that must reach.

- A server must answer the kubelet's readiness probe at the pod IP (this is what fails
  when a sidecar binds 127.0.0.1 again: the client still works over loopback).
- A server that never gets ready fails each shard once, quickly: the client gives up
  after `timeouts.ready` with exit code 4 and `podFailurePolicy` fails the index.
- An input missing from the store (no `auditc push`) fails the Job at once (exit 2,
  `FailJob`); after `auditc push`, applying the same manifests again replaces the failed
  Job (`pulumi.com/replaceUnready`) and it completes. Without the annotation the failed
  Job would block the update, as pulumi-kubernetes does.

The fixture audit (tests/fixtures/audits/k8s-pods) has a server that takes a second
per request and one whose model never finishes loading.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubelet_cluster import JobStatus, load_manifests
from kubelet_network import NodeNetwork
from kubelet_store import S3Server
from kubelet_support import REPO, STORE_SECRET, auditc, describe, new_cluster, write_project

AUDIT = REPO / "tests" / "fixtures" / "audits" / "k8s-pods" / "audits"


def _project(tmp_path: Path, s3: S3Server, prefix: str, *select: str) -> Path:
    project = write_project(
        tmp_path / "project",
        AUDIT,
        {
            "store": {"uri": s3.uri(prefix), "credentialsSecret": STORE_SECRET},
            "select": list(select),
        },
    )
    auditc(project, "compile", "--stack", "kubelet", "--out", "manifests")
    return project


def _job(jobs: dict[str, JobStatus], node_name: str) -> JobStatus:
    for name, job in jobs.items():
        if (
            not name.endswith("-commit")
            and job.pods
            and job.pods[0].labels["auditc.io/name"] == node_name
        ):
            return job
    raise KeyError(node_name)


@pytest.mark.slow
def test_sidecar_servers_answer_the_kubelets_probes_at_the_pod_ip(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    project = _project(tmp_path, s3, "probes", "slow-eval")
    auditc(project, "push", "--stack", "kubelet", node=node)
    result = new_cluster(node, tmp_path / "cluster").apply(project / "manifests")
    assert result.succeeded, describe(result)
    (pod,) = _job(result.jobs, "slow-eval").pods
    server = pod.containers["server"]
    readiness = server.probes["readiness"]
    # The client reaches its server over 127.0.0.1 either way; only the kubelet's probe,
    # sent to the pod IP, tells whether the server listens on the pod network.
    assert server.ever_ready and readiness.successes >= 1, (
        f"the readiness probe to {pod.ip} never passed ({readiness.last_error}); "
        "does the server listen on 127.0.0.1 only?\n" + describe(result)
    )
    assert server.restarts == 0 and pod.containers["client"].exit_codes == [0]
    assert "liveness" not in server.probes, "liveness starts only after timeouts.ready (60 s)"


@pytest.mark.slow
def test_a_server_that_never_gets_ready_fails_each_shard_once(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    project = _project(tmp_path, s3, "stuck", "stuck-eval")
    auditc(project, "push", "--stack", "kubelet", node=node)
    result = new_cluster(node, tmp_path / "cluster").apply(project / "manifests")
    assert not result.succeeded
    job = _job(result.jobs, "stuck-eval")
    assert (job.condition, job.reason) == ("Failed", "FailedIndexes"), describe(result)
    assert job.failed_indexes == {0, 1}
    assert len(job.pods) == 2, "exit 4 fails the index at once: no retry holds a GPU again"
    for pod in job.pods:
        client = pod.containers["client"]
        assert client.exit_codes == [4], describe(result)
        assert "http://127.0.0.1:8000/health was not ready after 3 s" in client.log()
        assert pod.containers["server"].restarts == 0
        assert pod.finished_at - pod.started_at < 60, "the pod ends soon after timeouts.ready"
    assert not any(name.endswith("-commit") for name in result.jobs), "nothing after a failed Job"


def _without_replace_unready(source: Path, target: Path) -> Path:
    target.mkdir()
    for manifest in load_manifests(source):
        body = manifest.body
        body["metadata"].get("annotations", {}).pop("pulumi.com/replaceUnready", None)
        (target / manifest.path.name).write_text(yaml.safe_dump(body))
    return target


@pytest.mark.slow
def test_a_missing_input_fails_the_job_at_once_and_push_then_up_reruns_it(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    project = _project(tmp_path, s3, "missing", "rows")
    cluster = new_cluster(node, tmp_path / "cluster")
    first = cluster.apply(project / "manifests")  # the user forgot `auditc push`
    job = _job(first.jobs, "rows")
    assert (job.condition, job.reason) == ("Failed", "PodFailurePolicy"), describe(first)
    (pod,) = job.pods
    assert pod.containers["fetch"].exit_codes == [2]
    assert "run `auditc push --store s3://audit-results/missing" in pod.log("fetch")
    assert list(pod.containers) == ["fetch"], "the step never started"

    plain = new_cluster(node, tmp_path / "plain")
    stripped = _without_replace_unready(project / "manifests", tmp_path / "stripped")
    assert not plain.apply(stripped).succeeded

    auditc(project, "push", "--stack", "kubelet", node=node)
    second = cluster.apply(project / "manifests")
    assert second.succeeded, describe(second)
    assert _job(second.jobs, "rows").succeeded, "the failed Job was replaced and ran again"
    third = cluster.apply(project / "manifests")
    assert third.succeeded and not third.jobs and third.kept, "a complete Job is left alone"

    # Without the annotation, the update would wait on the failed Job and fail again.
    blocked = plain.apply(stripped)
    assert not blocked.succeeded and not blocked.jobs
    assert "failed in an earlier update and is not replaced" in blocked.errors[0]
