"""The tutorial audit, from `auditc compile --target kubernetes` to `auditc report`, on a test cluster.

The only input of the run is the directory of manifests that `auditc compile` writes:
the test cluster (`kubelet_cluster`, `kubelet_pod`) applies it wave by wave and runs
every Job's pods as a kubelet would — their containers with the manifests' exact
commands, environment, volumes and security contexts, as uid 10001 on a read-only
root, each pod in its own network namespace with its own IP, the inference server as a
native sidecar probed at the pod IP. The runner image cannot be built here, so pods run
the project's own environment (the venv, its interpreter and the repository, bound
into each container's root; `kubelet_images`). The store is moto's S3 server on the
node; `auditc push`, `check` and `report` run on the node too, as from a machine that
reaches the cluster's store.

Then `auditc check` and `auditc report` read that store and must show what a local
`auditc run` of the same audit shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
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


def _gates(output: str) -> list[dict[str, Any]]:
    """`auditc check --format json`'s gates: method, system, run id, score, value, bounds."""
    gates: list[dict[str, Any]] = json.loads(output)["gates"]
    return gates


_RUN_FACTS = re.compile(
    r"finished \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00"  # when the run ended
    r"|Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC"  # when the notebook ran
    r"|from <code>[^<]*</code>"  # the store the site was built from
    r'|id="cell-id=[0-9a-f]+"'  # papermill's random id of the injected-parameters cell
)


def _pages(site: Path) -> dict[str, str]:
    """Every page of a site but provenance.html (times, images), without run times, the
    store's name and random cell ids."""
    return {
        str(path.relative_to(site)): _RUN_FACTS.sub("…", path.read_text())
        for path in sorted(site.rglob("*.html"))
        if path.name != "provenance.html"
    }


@pytest.mark.slow
def test_tutorial_runs_from_compiled_manifests_as_it_runs_locally(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    store = s3.uri("tutorial")
    project = write_project(
        tmp_path / "project",
        TUTORIAL,
        {
            "store": {"uri": store, "credentialsSecret": STORE_SECRET},
            "images": {
                "runner": RUNNER_IMAGE,
                "runnerPackages": ["alt-profanity-check==1.9.1"],
            },
        },
    )
    compiled = auditc(
        project, "compile", "--target", "kubernetes", "--stack", "kubelet", "--out", "manifests"
    )
    assert "warning" not in compiled.stderr, compiled.stderr
    auditc(project, "push", "--stack", "kubelet", node=node)
    # The local run to compare with, meanwhile (into the project's own .auditc store).
    local_run = start_auditc(project, "run", f"audits/{TUTORIAL.name}", log=tmp_path / "local.log")

    cluster = new_cluster(node, tmp_path / "cluster")
    result = cluster.apply(project / "manifests")
    assert result.succeeded, describe(result)
    jobs = {
        job.pods[0].labels["auditc.io/name"] + ("/commit" if name.endswith("-commit") else ""): job
        for name, job in result.jobs.items()
    }
    assert len(jobs) == 2 + 2 * 2 + 5, sorted(jobs)
    for name in ("filter-on-identity-sentences", "filter-on-general-sentences"):
        (pod,) = jobs[name].pods
        assert list(pod.containers) == ["fetch", "server", "client"], name
        server, client = pod.containers["server"], pod.containers["client"]
        assert (server.kind, client.kind) == ("sidecar", "main")
        assert server.restarts == 0 and client.exit_codes == [0], describe(result)
        assert (
            pod.hostname.endswith("-0")
            and pod.annotations["batch.kubernetes.io/job-completion-index"] == "0"
        )
        assert "evaluation complete" in client.log()
    ips = {pod.ip for job in result.jobs.values() for pod in job.pods}
    assert len(ips) == sum(len(job.pods) for job in result.jobs.values()), "one IP per pod"

    # What the cluster wrote, read as a reviewer would, against a local run of the audit.
    cluster_gates = auditc(
        project, "check", "--store", store, "--format", "json", node=node, check=False
    )
    assert cluster_gates.returncode == 1, cluster_gates.stderr  # the tutorial's FPR gate fails
    auditc(project, "report", "--store", store, "--out", "site-cluster", node=node)

    assert local_run.wait(600) == 0, (tmp_path / "local.log").read_text()
    local_gates = auditc(project, "check", "--format", "json", check=False)
    assert local_gates.returncode == 1, local_gates.stderr
    auditc(project, "report", "--out", "site-local")

    gates = _gates(cluster_gates.stdout)
    assert [(g["score"], g["value"], g["passed"]) for g in gates] == [
        ("max_fpr_gap", 0.8, False),
        ("accuracy", 0.97, True),
    ]
    assert gates == _gates(local_gates.stdout)
    pages = _pages(project / "site-cluster")
    assert len(pages) >= 4 and pages == _pages(project / "site-local")
