"""The test cluster itself: does it do what a cluster does? (Its own, small manifests.)

The manifest-execution tests are only as good as the kubelet and Job controller they
run on; these pin down the behaviours they rely on: `$(VAR)` expansion, the order of
`podFailurePolicy` rules, a container's user, groups, read-only root, mounts, hostname
and IP, and a native sidecar whose startup probe must pass before the main container
starts — and that is restarted when it exits.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubelet_cluster import pod_failure_action
from kubelet_env import expand
from kubelet_network import NodeNetwork
from kubelet_pod import ContainerStatus, PodResult
from kubelet_support import RUNNER_IMAGE, describe, new_cluster

SECURITY = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": True}
LOCKED = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}


def test_variable_expansion_is_kubernetes() -> None:
    variables = {"A": "x", "EMPTY": ""}
    assert expand("$(A)-$$(A)-$(B)-$(EMPTY)-$", variables) == "x-$(A)-$(B)--$"
    assert expand("$(A", variables) == "$(A"


def _pod(**exits: int) -> PodResult:
    pod = PodResult("p", "p", "10.0.0.2", {}, {})
    for name, code in exits.items():
        pod.containers[name] = ContainerStatus(name, "main", exit_codes=[code])
    return pod


def test_pod_failure_policy_rules_apply_in_order() -> None:
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
            {
                "action": "FailIndex",
                "onExitCodes": {"containerName": "client", "operator": "In", "values": [4]},
            },
            {"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1, 2, 4]}},
        ]
    }
    assert pod_failure_action(policy, _pod(fetch=0, client=2)) == "FailJob"
    assert pod_failure_action(policy, _pod(server=4, client=1)) == "Count", (
        "4 counts only from client"
    )
    assert pod_failure_action(policy, _pod(server=143, client=4)) == "FailIndex"
    assert pod_failure_action(policy, _pod(client=137)) == "Ignore"
    assert pod_failure_action(None, _pod(client=1)) == "Count"


def _write(directory: Path, *objects: dict[str, Any]) -> Path:
    directory.mkdir()
    for number, body in enumerate(objects, start=1):
        body["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = str(
            number - 1
        )
        name = f"{number:02d}-{body['kind'].lower()}-{body['metadata']['name']}.yaml"
        (directory / name).write_text(yaml.safe_dump(body))
    return directory


def _job(name: str, spec: dict[str, Any], **job: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "t"},
        "spec": {
            "backoffLimit": 0,
            **job,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", **spec},
            },
        },
    }


CHECK_CONTAINER = textwrap.dedent(
    """
    import getpass, os, socket, sys
    assert (os.getuid(), os.getgid(), sorted(os.getgroups())) == (10001, 10001, [10001]), os.getgroups()
    assert getpass.getuser() == "auditc"  # the runner image's passwd entry
    assert socket.gethostname() == os.environ["HOSTNAME"] == "check-0"
    # An env value sees only variables defined before it (the controller appends the
    # index last); args see them all ($$ keeps this script's own reference literal).
    assert os.environ["INDEX"] == "$$(JOB_COMPLETION_INDEX)" and sys.argv[1] == "0"
    assert os.environ["GREETING"] == "hello check"
    assert open("/etc/cfg/greeting").read() == "hello"
    for path in ("/x", "/etc/cfg/new"):
        try:
            open(path, "w")
        except OSError as exc:
            assert exc.errno == 30, exc  # EROFS: read-only root and read-only mount
        else:
            raise AssertionError(path + " is writable")
    open("/tmp/ok", "w").write("1")
    """
)


def test_a_container_gets_the_manifests_user_mounts_env_and_hostname(
    node: NodeNetwork, tmp_path: Path
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "t"},
        "data": {"greeting": "hello"},
    }
    job = _job(
        "check",
        {
            "securityContext": SECURITY,
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
            ],
            "containers": [
                {
                    "name": "check",
                    "image": RUNNER_IMAGE,
                    "command": ["python", "-c"],
                    "args": [CHECK_CONTAINER, "$(JOB_COMPLETION_INDEX)"],
                    "env": [
                        {"name": "INDEX", "value": "$(JOB_COMPLETION_INDEX)"},
                        {
                            "name": "GREETING",
                            "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                        },
                        {"name": "GREETING", "value": "$(GREETING) check"},
                    ],
                    "securityContext": LOCKED,
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                    ],
                }
            ],
        },
        completionMode="Indexed",
        completions=1,
        backoffLimitPerIndex=0,
    )
    job["spec"].pop("backoffLimit")
    result = new_cluster(node, tmp_path / "cluster").apply(_write(tmp_path / "m", config, job))
    assert result.succeeded, describe(result)


SERVER = textwrap.dedent(
    """
    import http.server, time
    time.sleep(2)  # "loading"
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers()
    http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()
    """
)
CLIENT = textwrap.dedent(
    """
    import urllib.request
    print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=2).status)
    """
)


@pytest.mark.parametrize("startup_probe", [True, False])
def test_a_sidecar_with_a_startup_probe_starts_before_the_main_container(
    node: NodeNetwork, tmp_path: Path, startup_probe: bool
) -> None:
    server: dict[str, Any] = {
        "name": "server",
        "image": RUNNER_IMAGE,
        "command": ["python", "-c", SERVER],
        "restartPolicy": "Always",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if startup_probe:
        server["startupProbe"] = {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 30,
        }
    job = _job(
        "sidecar",
        {
            "securityContext": SECURITY,
            "initContainers": [server],
            "containers": [
                {"name": "client", "image": RUNNER_IMAGE, "command": ["python", "-c", CLIENT]}
            ],
        },
    )
    result = new_cluster(node, tmp_path / "cluster").apply(_write(tmp_path / "m", job))
    (status,) = result.jobs.values()
    (pod,) = status.pods
    if startup_probe:
        assert result.succeeded, describe(result)
        assert pod.containers["server"].probes["startup"].successes == 1
        assert pod.containers["server"].exit_codes, "stopped after the main container"
    else:
        # Without a startup probe the client starts at once and finds nothing listening.
        assert not result.succeeded and "Connection refused" in pod.log("client")


def test_a_sidecar_that_exits_is_restarted(node: NodeNetwork, tmp_path: Path) -> None:
    job = _job(
        "restart",
        {
            "securityContext": SECURITY,
            "initContainers": [
                {
                    "name": "flaky",
                    "image": RUNNER_IMAGE,
                    "command": ["python", "-c", "raise SystemExit(3)"],
                    "restartPolicy": "Always",
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": RUNNER_IMAGE,
                    "command": ["python", "-c", "import time; time.sleep(13)"],
                }
            ],
        },
    )
    result = new_cluster(node, tmp_path / "cluster").apply(_write(tmp_path / "m", job))
    assert result.succeeded, describe(result)
    (pod,) = result.jobs["restart"].pods
    flaky = pod.containers["flaky"]
    assert flaky.restarts >= 1 and flaky.exit_codes[0] == 3, (
        "restarted after the kubelet's 10 s back-off"
    )
