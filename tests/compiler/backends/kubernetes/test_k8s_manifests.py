"""The Kubernetes program under Pulumi's mock runtime: valid manifests with the right structure.

Covers `auditc compile --target kubernetes` (same code path), strict validation against
Kubernetes 1.33, GPU placement, the sidecar server, Indexed Job settings, ordering,
secrets, security contexts and names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_helpers import FIXTURE, STACK, containers, pod_templates

from compiler import Graph, write_generated_files
from compiler.backends.kubernetes import KubernetesConfig, Rendering, render_manifests
from compiler.cli.main import main
from runners.evaluation import EvaluationConfig
from runners.fetch import CommitConfig, FetchConfig
from runners.inference import ServerConfig
from runners.methods import MethodConfig

GPU = "nvidia.com/gpu"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _compile(out: Path, *extra: str) -> None:
    store = STACK["store"]["uri"]
    main(
        [
            "-C",
            str(FIXTURE),
            "compile",
            "--target",
            "kubernetes",
            "--out",
            str(out),
            "--store",
            store,
            *extra,
        ]
    )


def test_compile_writes_strictly_valid_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "manifests"
    # What an earlier compile wrote (its marker lists it), and a file of the user's.
    write_generated_files(out, {"99-job-stale-0000000000.yaml": "stale: true\n"})
    (out / "kustomization.yaml").write_text("resources: []\n")
    _compile(out)
    assert "Kubernetes manifests to" in capsys.readouterr().out
    files = sorted(p.name for p in out.glob("[0-9]*.yaml"))
    assert "99-job-stale-0000000000.yaml" not in files, "an earlier compile's file survived"
    assert (out / "kustomization.yaml").exists(), "a file that is not ours was removed"
    assert files == sorted(files) and files[0].startswith("01-namespace-")
    kinds = set()
    for name in files:
        document = yaml.safe_load((out / name).read_text())
        kubernetes_validate.validate(document, "1.33.0", strict=True)
        kinds.add(document["kind"])
        assert name == f"{name[:2]}-{document['kind'].lower()}-{document['metadata']['name']}.yaml"
    assert kinds == {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Job",
        "Deployment",
        "Service",
        "NetworkPolicy",
    }


def test_compile_output_is_the_rendering(tmp_path: Path, graph: Graph) -> None:
    """The CLI writes exactly what the Pulumi program declares (same code path, stable order)."""
    out = tmp_path / "m"
    _compile(out, "--no-validate")
    written = {p.name: p.read_text() for p in out.glob("*.yaml")}
    plain = KubernetesConfig.model_validate({"store": {"uri": STACK["store"]["uri"]}})
    assert written == render_manifests(graph, plain).files()


def test_integral_numbers_are_ints(rendering: Rendering) -> None:
    def walk(value: Any) -> None:
        assert not (isinstance(value, float) and value.is_integer()), value
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for resource in rendering.resources:
        walk(resource.manifest)


def test_gpu_only_where_a_service_asks_for_one(rendering: Rendering) -> None:
    with_gpu = set()
    for key, template in pod_templates(rendering):
        spec = template["spec"]
        limits = [c["resources"]["limits"] for c in containers(template)]
        if any(GPU in limit for limit in limits):
            with_gpu.add(key)
            assert [limit[GPU] for limit in limits if GPU in limit] == ["2"]
            assert spec["tolerations"] == [
                {"effect": "NoSchedule", "key": GPU, "operator": "Exists"}
            ]
            assert spec["nodeSelector"] == {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            }
        else:
            assert "tolerations" not in spec and "nodeSelector" not in spec, key
    names = {k.split("/")[1].rsplit("-", 1)[0] for k in with_gpu}
    assert names == {"phrases-llm", "llm-playground"}


def test_evaluation_pod_runs_the_server_as_a_native_sidecar(jobs: dict[str, Any]) -> None:
    pod = jobs["phrases-llm"]["spec"]["template"]["spec"]
    fetch, server = pod["initContainers"]
    assert fetch["name"] == "fetch" and "restartPolicy" not in fetch
    assert server["name"] == "server" and server["restartPolicy"] == "Always"
    assert server["image"] == "vllm/vllm-openai:v0.11.0"
    assert server["command"] == ["vllm", "serve"]
    revision = "0123456789abcdef0123456789abcdef01234567"
    assert server["args"][:3] == ["acme/tiny-llm", "--revision", revision]
    assert "--max-model-len" in server["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    # No startup probe: the kubelet would hold the client back until it passed and
    # restart the sidecar for ever when it fails. The client waits for the server itself
    # (step.json's ready_url, up to the spec's ready timeout of 1200 s); liveness checks
    # start only once that time is up, so a slowly loading model is never killed.
    assert "startupProbe" not in server
    assert server["livenessProbe"]["initialDelaySeconds"] == 1200
    assert "initialDelaySeconds" not in server["readinessProbe"]
    assert server["ports"] == [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert mounts["shm"] == "/dev/shm" and mounts["model-cache"] == "/model-cache"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    tokens = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in server["env"] if "valueFrom" in e}
    assert tokens["HF_TOKEN"] == {"key": "token", "name": "hf-token", "optional": True}
    (client,) = pod["containers"]
    assert client["name"] == "client"
    assert client["args"] == [
        "runners.evaluation",
        "/etc/auditc/step.json",
        "--shard",
        "$(JOB_COMPLETION_INDEX)/4",
    ]
    index = next(e for e in client["env"] if e["name"] == "JOB_COMPLETION_INDEX")
    assert "job-completion-index" in index["valueFrom"]["fieldRef"]["fieldPath"]
    assert GPU not in client["resources"]["limits"]


def test_indexed_job_settings(jobs: dict[str, Any]) -> None:
    spec = jobs["phrases-llm"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimitPerIndex"] == 2 and "backoffLimit" not in spec
    assert spec["activeDeadlineSeconds"] == 3600 + 1200 + 900
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    disruption = {
        "action": "Ignore",
        "onPodConditions": [{"status": "True", "type": "DisruptionTarget"}],
    }
    invalid = {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}
    not_ready = {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "client", "operator": "In", "values": [4]},
    }
    assert spec["podFailurePolicy"]["rules"] == [invalid, not_ready, disruption]
    method = jobs["mean-score"]["spec"]
    assert method["completionMode"] == "NonIndexed" and method["completions"] == 1
    assert method["backoffLimit"] == 2 and method["activeDeadlineSeconds"] == 1800 + 900
    assert method["podFailurePolicy"]["rules"] == [invalid, disruption]


def test_runner_flavours(jobs: dict[str, Any], rendering: Rendering) -> None:
    hosted = jobs["phrases-hosted"]["spec"]["template"]["spec"]
    assert [c["name"] for c in hosted["initContainers"]] == ["fetch"], "external: no sidecar"
    key = next(e for e in hosted["containers"][0]["env"] if e["name"] == "EXAMPLE_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {
        "key": "EXAMPLE_API_KEY",
        "name": "auditc-api-keys",
        "optional": False,
    }
    echo = jobs["phrases-echo"]["spec"]["template"]["spec"]["initContainers"][1]
    assert echo["image"] == "ghcr.io/acme/echo:1.2.3"
    assert echo["ports"][0]["containerPort"] == 9000
    assert {"name": "MODE", "value": "echo"} in echo["env"]
    python = jobs["phrases-length"]["spec"]["template"]["spec"]["initContainers"][1]
    assert python["image"] == "ghcr.io/auditc/auditc-runner:0.1.0"
    assert python["args"] == ["/etc/auditc/server.json"]
    assert python["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}


def test_config_maps_carry_the_runner_configs(rendering: Rendering, graph: Graph) -> None:
    evaluation = graph["phrases-length"]
    data = rendering.find("ConfigMap", f"phrases-length-{evaluation.id[:10]}").manifest["data"]
    step = EvaluationConfig.model_validate_json(data["step.json"])
    assert step.base_url == "http://127.0.0.1:8000" and step.shard_count == 2
    assert step.ready_url == "http://127.0.0.1:8000/health"
    assert step.output_uri == (
        f"s3://audit-results/ci/evaluation/phrases-length/{evaluation.id}"
        "?endpoint_override=minio.storage:9000&scheme=http"
    )
    server = ServerConfig.model_validate_json(data["server.json"])
    assert server.python_paths == ["/work/inputs/audits/modules/model"]
    fetch = FetchConfig.model_validate_json(data["inputs.json"])
    assert [(i.path, i.type) for i in fetch.items] == [("audits/modules/model", "dir")]
    assert fetch.items[0].sha256 == graph["toy-model"].files["audits/modules/model"]
    commit = CommitConfig.model_validate_json(data["commit.json"])
    assert commit.expected is not None and commit.expected.replications == 1
    assert commit.manifest["upstream"]["Dataset/phrases"] == graph["phrases"].id

    case = graph["case"]
    data = rendering.find("ConfigMap", f"case-{case.id[:10]}").manifest["data"]
    method = MethodConfig.model_validate_json(data["step.json"])
    assert method.notebook_path == "/work/inputs/audits/notebooks/case.ipynb"
    assert method.inputs["summary"].kind == "Measurement"
    assert json.loads(data["commit.json"])["count_rows"] is False


def test_jobs_wait_for_their_inputs(rendering: Rendering, graph: Graph) -> None:
    def waits(name: str, suffix: str = "") -> set[str]:
        node = graph[name]
        job = f"{name}-{node.id[:10]}" + (f"-{suffix}" if suffix else "")
        return rendering.waits_for(rendering.find("Job", job))

    def job(name: str, suffix: str = "") -> str:
        return f"Job/{name}-{graph[name].id[:10]}" + (f"-{suffix}" if suffix else "")

    assert job("phrases") in waits("phrases-length")
    assert job("phrases-length") in waits("phrases-length", "commit")
    assert {job("phrases-length"), job("phrases-length", "commit")} <= waits("mean-score")
    assert job("mean-score") in waits("case")
    assert job("phrases") in waits("label-counts")
    assert not any("phrases-length" in w for w in waits("label-counts"))
    assert "Namespace/auditc" in waits("phrases")
    # Files are numbered so that what a resource waits for comes first.
    position = {f"{r.kind}/{r.name}": i for i, r in enumerate(rendering.resources)}
    for resource in rendering.resources:
        for dependency in rendering.waits_for(resource):
            assert position[dependency] < position[f"{resource.kind}/{resource.name}"]


def test_no_secret_value_reaches_a_manifest(
    monkeypatch: pytest.MonkeyPatch, graph: Graph, config: KubernetesConfig
) -> None:
    planted = {
        "HF_TOKEN": "hf_PLANTEDfakeToken123",
        "EXAMPLE_API_KEY": "sk-PLANTED-fake-api-key",
        "AWS_ACCESS_KEY_ID": "AKIAPLANTEDFAKE",
        "AWS_SECRET_ACCESS_KEY": "PLANTED/fake/secret/key",
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    rendering = render_manifests(graph, config)
    text = "".join(rendering.files().values()) + json.dumps(rendering.outputs, default=str)
    for value in planted.values():
        assert value not in text
    assert "PLANTED" not in text
    assert not [r for r in rendering.resources if r.kind == "Secret"]


def test_every_pod_is_locked_down(rendering: Rendering) -> None:
    templates = dict(pod_templates(rendering))
    # 8 workflow Jobs, 4 evaluation commit Jobs, 1 session Deployment.
    assert len(templates) == 13
    for key, template in templates.items():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, key
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, key
        assert spec["automountServiceAccountToken"] is False, key
        assert spec["serviceAccountName"] == "auditc-runner", key
        assert spec["imagePullSecrets"] == [{"name": "ghcr-pull"}], key
        for container in containers(template):
            context = container["securityContext"]
            where = f"{key} {container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsNonRoot"] is True, where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert {"cpu", "memory"} <= set(resources["limits"]), where
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, where
    namespace = rendering.find("Namespace", "auditc").manifest
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_names_are_unique_valid_and_carry_node_ids(rendering: Rendering, graph: Graph) -> None:
    keys = [(r.kind, r.name) for r in rendering.resources]
    assert len(keys) == len(set(keys))
    for kind, name in keys:
        assert len(name) <= 63 and DNS_1123.match(name), (kind, name)
    for node in graph:
        if node.is_workflow:
            assert ("Job", f"{node.name}-{node.id[:10]}") in keys
            assert ("ConfigMap", f"{node.name}-{node.id[:10]}") in keys
    for resource in rendering.resources:
        assert resource.manifest["metadata"]["labels"]["team"] == "safety"


def test_session_is_a_deployment_behind_a_service_only_evaluations_reach(
    rendering: Rendering, graph: Graph
) -> None:
    name = f"llm-playground-{graph['llm-playground'].id[:10]}"
    deployment = rendering.find("Deployment", name).manifest
    assert deployment["spec"]["replicas"] == 2
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    assert server["args"][server["args"].index("--host") + 1] == "0.0.0.0"
    assert "restartPolicy" not in server
    # Not a sidecar: the startup probe gives the model 600 s before liveness checks begin.
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600
    assert "initialDelaySeconds" not in server["livenessProbe"]
    service = rendering.find("Service", name).manifest
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    policy = rendering.find("NetworkPolicy", name).manifest["spec"]
    assert policy["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"auditc.io/role": "evaluation"}}}],
            "ports": [{"port": 8000, "protocol": "TCP"}],
        }
    ]


def test_stack_outputs_name_each_node(rendering: Rendering, graph: Graph) -> None:
    nodes = rendering.outputs["nodes"]
    workflows = {n.key for n in graph if n.is_workflow}
    assert workflows | {"InferenceSession/llm-playground"} == set(nodes)
    case = graph["case"]
    assert nodes["Method/case"] == {
        "id": case.id,
        "uri": f"s3://audit-results/ci/method/case/{case.id}"
        "?endpoint_override=minio.storage:9000&scheme=http",
        "job": f"case-{case.id[:10]}",
        "status": "pending",
    }
    assert rendering.outputs["store"] == STACK["store"]["uri"]
