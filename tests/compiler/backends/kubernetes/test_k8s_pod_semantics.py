"""What the manifests must say for pods to start, fail fast and finish on a cluster.

Each test reads the compiled manifests for one thing a cluster does with them: where the
kubelet's probes go, what a user without a passwd entry needs, what Pulumi does with a
failed Job on the next update, what the Job controller names pods, how many GPUs vLLM
uses, what `pulumi destroy` deletes, and what cannot work in a pod. The manifest
execution test (tests/kubelet) runs the same manifests.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import STACK, containers, copy_project, load_graph, pod_templates

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig, Rendering, render_manifests
from compiler.cli.main import main
from runners.inference import ServerConfig
from schemas import BackendError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CACHE_VARIABLES = (
    "HF_HOME",
    "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
    "VLLM_CACHE_ROOT",
    "XDG_CACHE_HOME",
)


def _job(rendering: Rendering, graph: Graph, name: str) -> dict[str, Any]:
    for resource in rendering.resources:
        labels = resource.manifest["metadata"]["labels"]
        role = labels.get("auditc.io/role")
        if resource.kind == "Job" and labels["auditc.io/name"] == name and role != "commit":
            return resource.manifest
    raise KeyError(name)


def _server(rendering: Rendering, graph: Graph, evaluation: str) -> dict[str, Any]:
    pod = _job(rendering, graph, evaluation)["spec"]["template"]["spec"]
    return next(c for c in pod["initContainers"] if c["name"] == "server")


# ------------------------------------------------------------ 1. probes reach servers


def test_sidecar_servers_listen_where_the_kubelet_probes(
    rendering: Rendering, graph: Graph
) -> None:
    """The kubelet sends httpGet probes without a host to the pod IP, not to loopback."""
    vllm = _server(rendering, graph, "phrases-llm")
    assert vllm["args"][vllm["args"].index("--host") + 1] == "0.0.0.0"
    python = _server(rendering, graph, "phrases-length")
    node = graph["phrases-length"]
    data = rendering.find("ConfigMap", f"phrases-length-{node.id[:10]}").manifest["data"]
    assert ServerConfig.model_validate_json(data["server.json"]).host == "0.0.0.0"
    for server in (vllm, python):
        for probe in ("readinessProbe", "livenessProbe"):
            assert "host" not in server[probe]["httpGet"], "a probe host would bypass the pod IP"


def test_evaluation_pods_accept_no_ingress(rendering: Rendering, graph: Graph) -> None:
    policy = rendering.find("NetworkPolicy", "auditc-jobs-default-deny").manifest["spec"]
    assert policy["podSelector"] == {"matchLabels": {"auditc.io/job-pod": "true"}}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy, "no ingress rule: nothing may connect (kubelet probes pass)"
    for name in ("phrases-llm", "phrases-length", "phrases-echo", "phrases-hosted"):
        labels = _job(rendering, graph, name)["spec"]["template"]["metadata"]["labels"]
        assert labels["auditc.io/role"] == "evaluation", name
        assert labels["auditc.io/job-pod"] == "true", name


# ----------------------------------------------------- 2. a uid without a passwd entry


def _writable_mounts(container: dict[str, Any]) -> list[str]:
    return [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]


def test_servers_run_as_a_user_without_passwd_entry(rendering: Rendering, graph: Graph) -> None:
    """vLLM's image has no passwd entry for 10001: USER and every cache must come from env."""
    for evaluation in ("phrases-llm", "phrases-length", "phrases-echo"):
        server = _server(rendering, graph, evaluation)
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert env["USER"] == env["LOGNAME"] == "auditc", evaluation
        writable = _writable_mounts(server)
        for variable in CACHE_VARIABLES:
            if variable == "HF_HOME" and evaluation != "phrases-llm":
                assert variable not in env, "only servers of Hub models get a model cache"
                continue
            path = env[variable]
            assert any(posixpath.commonpath([path, mount]) == mount for mount in writable), (
                f"{evaluation}: {variable}={path} is not on a writable volume ({writable})"
            )
        assert server["securityContext"]["readOnlyRootFilesystem"] is True


# ----------------------------------------------------- 4. failed Jobs are re-run


def test_the_next_update_replaces_a_failed_job(rendering: Rendering) -> None:
    jobs = [r for r in rendering.resources if r.kind == "Job"]
    assert jobs
    for job in jobs:
        annotations = job.manifest["metadata"]["annotations"]
        assert annotations.get("pulumi.com/replaceUnready") == "true", job.name


# ------------------------------------------------ 5. hostnames of Indexed Job pods


def test_indexed_job_names_leave_room_for_pod_hostnames(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    long_name = "identity-phrases-through-the-length-service-sharded"
    assert len(long_name) == 51
    for name, shards in ((long_name + "x", 100), (long_name + "y", 10), (long_name + "z", 1)):
        with (project / "audits" / "evaluations.yaml").open("a") as handle:
            handle.write(
                f"---\nkind: Evaluation\nname: {name}\n"
                f"spec: {{service: length-service, dataset: phrases, shards: {shards}}}\n"
            )
    graph = load_graph(project)
    config = KubernetesConfig.model_validate({"store": {"uri": STACK["store"]["uri"]}})
    rendering = render_manifests(graph, config)
    names = set()
    for resource in rendering.resources:
        if resource.kind != "Job" or resource.manifest["spec"]["completionMode"] != "Indexed":
            continue
        spec = resource.manifest["spec"]
        last = f"{resource.name}-{spec['completions'] - 1}"
        assert DNS_LABEL.match(last), f"pod hostname {last!r} ({len(last)} chars) is invalid"
        names.add(resource.name)
    job = _job(rendering, graph, long_name + "x")
    assert len(job["metadata"]["name"]) <= 60 and job["spec"]["completions"] == 100
    assert job["metadata"]["name"].endswith(f"-{graph[long_name + 'x'].id[:10]}")
    assert len(_job(rendering, graph, long_name + "y")["metadata"]["name"]) <= 61
    # The ConfigMap the pods mount has the Job's name.
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == job["metadata"]["name"]
    assert len(names) == 7, "four fixture evaluations and three long ones, all distinct"


# ----------------------------------------------- 7. the GPUs asked for are used


def _with_vllm_args(tmp_path: Path, args: str) -> Graph:
    project = copy_project(tmp_path / "project")
    services = project / "audits" / "services.yaml"
    text = services.read_text()
    old = 'runner: {kind: vllm, args: [--max-model-len, "2048"]}'
    assert text.count(old) == 1
    services.write_text(text.replace(old, f"runner: {{kind: vllm, args: {args}}}"))
    return load_graph(project)


def test_vllm_splits_the_model_over_every_gpu_it_asks_for(
    rendering: Rendering, graph: Graph
) -> None:
    server = _server(rendering, graph, "phrases-llm")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "2"
    args = server["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"


def test_vllm_args_that_use_other_gpu_counts_are_refused(tmp_path: Path) -> None:
    graph = _with_vllm_args(tmp_path / "a", '["--tensor-parallel-size", "4"]')
    with pytest.raises(BackendError) as caught:
        render_manifests(graph, KubernetesConfig.model_validate(STACK))
    message = str(caught.value)
    assert message.startswith("InferenceService/llm-vllm (audits/services.yaml:")
    assert "resources.accelerator.count is 2 but runner.args make vLLM use 4 GPU(s)" in message

    graph = _with_vllm_args(tmp_path / "b", '["-tp=1", "--pipeline-parallel-size", "2"]')
    server = _server(
        render_manifests(graph, KubernetesConfig.model_validate(STACK)), graph, "phrases-llm"
    )
    assert "--tensor-parallel-size" not in server["args"], "the user's split is kept as it is"


# ------------------------------------------------- 8. results survive pulumi destroy


def test_what_holds_results_is_left_by_destroy(graph: Graph) -> None:
    stack = {
        **STACK,
        "store": {"pvc": {"claimName": "auditc-store", "size": "100Gi"}},
        "modelCache": {"pvc": {"claimName": "auditc-model-cache", "size": "200Gi"}},
    }
    rendering = render_manifests(graph, KubernetesConfig.model_validate(stack))
    kept = {
        f"{r.kind}/{r.name}": r
        for r in rendering.resources
        if r.kind in ("Namespace", "PersistentVolumeClaim")
    }
    assert set(kept) == {
        "Namespace/auditc",
        "PersistentVolumeClaim/auditc-store",
        "PersistentVolumeClaim/auditc-model-cache",
    }
    for key, resource in kept.items():
        assert resource.retain_on_delete, f"pulumi destroy would delete {key}"
        annotations = resource.manifest["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/sync-options"] == "Delete=false,Prune=false", key
    retained = [r for r in rendering.resources if r.retain_on_delete]
    assert len(retained) == 3, "Jobs, ConfigMaps and policies are deleted as usual"


# --------------------------------------- 10. what cannot work in a pod is a warning


def test_compile_warns_about_what_cannot_work_in_a_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    services = project / "audits" / "services.yaml"
    services.write_text(
        services.read_text().replace("https://api.example.com", "http://127.0.0.1:8080")
        + "---\nkind: Model\nname: profanity\n"
        'spec: {python: {package: "alt-profanity-check==1.9.1", '
        'callable: "profanity_check:predict_prob", argument: text, output: score}}\n'
        "---\nkind: InferenceService\nname: profanity-service\n"
        "spec:\n  model: profanity\n  runner: {kind: python}\n"
        '  interface: {request: {text: "$.text"}, response: {score: "$.score"}, '
        "output: {score: float64}}\n"
    )
    (project / "audits" / "evaluations.yaml").open("a").write(
        "---\nkind: Evaluation\nname: phrases-profanity\n"
        "spec: {service: profanity-service, dataset: phrases}\n"
    )
    out = tmp_path / "out"
    store = STACK["store"]["uri"]
    main(["-C", str(project), "compile", "--store", store, "--out", str(out), "--no-validate"])
    warnings = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("warning:") and "named by tag" not in line
    ]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("warning: InferenceService/hosted-api (audits/services.yaml:")
    assert "runner.url http://127.0.0.1:8080 is a loopback address" in warnings[0]
    assert warnings[1].startswith(
        "warning: InferenceService/profanity-service (audits/services.yaml:"
    )
    assert (
        "Model/profanity needs alt-profanity-check==1.9.1, which the runner image does not list"
        in warnings[1]
    )

    stack = project / "stacks" / "Pulumi.ci.yaml"
    stack.parent.mkdir()
    stack.write_text(
        json.dumps(
            {
                "config": {
                    "auditc:store": {"uri": store},
                    "auditc:images": {"runnerPackages": ["Alt_Profanity_Check==1.9.1"]},
                }
            }
        )
    )
    main(["-C", str(project), "compile", "--stack", "ci", "--out", str(out), "--no-validate"])
    warnings = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("warning:") and "named by tag" not in line
    ]
    assert len(warnings) == 1 and "loopback" in warnings[0], "the listed package satisfies it"

    stack.write_text(stack.read_text().replace("==1.9.1", "==1.8.0"))
    main(["-C", str(project), "compile", "--stack", "ci", "--out", str(out), "--no-validate"])
    warnings = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("warning:") and "named by tag" not in line
    ]
    assert (
        "needs alt-profanity-check==1.9.1, but the runner image has Alt_Profanity_Check==1.8.0"
        in warnings[1]
    )


def test_every_pod_template_is_complete(rendering: Rendering) -> None:
    """Guards the helpers above: every container the tests look at exists."""
    assert {c["name"] for _, t in pod_templates(rendering) for c in containers(t)} >= {
        "fetch",
        "server",
        "client",
        "commit",
        "method",
        "ingest",
    }
