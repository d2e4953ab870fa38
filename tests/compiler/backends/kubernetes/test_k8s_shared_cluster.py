"""Shared GPU clusters under Pulumi's mock runtime: queues, placement, identity, caches,
NetworkPolicies, asynchronous runs, and one component resource per audit node.

Each test renders the test audit with the stack settings of its item and reads the
objects as the cluster would get them. What these settings change in a pod at run time
is executed in tests/kubelet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import STACK, containers, copy_project, load_graph

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig, Rendering, render_manifests
from compiler.backends.kubernetes._outputs import safety_case_scores
from runners.fetch import ModelFetchConfig, WaitConfig
from schemas import SCORES_FILE, FileDigest, Manifest, ScoresFile, ScoreValue, Store, case_file

GPU_PRODUCTS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"]
SHARED = {
    **STACK,
    "scheduling": {
        "queueName": "safety-audits",
        "workloadPriorityClass": "audit-batch",
        "priorityClassName": "batch-low",
        "runtimeClassName": "nvidia",
        "gpuProducts": GPU_PRODUCTS,
        "cpu": {
            "nodeSelector": {"node-pool": "cpu"},
            "tolerations": [{"key": "pool", "operator": "Equal", "value": "cpu"}],
        },
    },
    "serviceAccount": {
        "name": "audit-identity",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/a"},
        "podLabels": {"azure.workload.identity/use": "true"},
    },
    "modelCache": {"pvc": {"claimName": "models", "size": "100Gi"}},
    "network": {"extra": [{"cidr": "169.254.170.23/32", "ports": [80]}]},
}


def _unpinned_gpu_project(tmp_path: Path) -> Path:
    """The test audit, its vLLM service asking for any GPU product (none pinned)."""
    project = copy_project(tmp_path / "project")
    services = project / "audits" / "services.yaml"
    services.write_text(services.read_text().replace(", product: NVIDIA-H100-80GB-HBM3", ""))
    return project


@pytest.fixture(scope="module")
def shared_graph(tmp_path_factory: pytest.TempPathFactory) -> Graph:
    return load_graph(_unpinned_gpu_project(tmp_path_factory.mktemp("shared")))


@pytest.fixture(scope="module")
def shared(shared_graph: Graph) -> Rendering:
    return render_manifests(shared_graph, KubernetesConfig.model_validate(SHARED))


def _jobs(rendering: Rendering) -> dict[str, dict[str, Any]]:
    """`<node name>[/commit|/prefetch]` → Job manifest."""
    found = {}
    for resource in rendering.resources:
        if resource.kind == "Job":
            labels = resource.manifest["metadata"]["labels"]
            role = labels["auditc.io/role"]
            suffix = f"/{role}" if role in ("commit", "prefetch") else ""
            found[labels["auditc.io/name"] + suffix] = resource.manifest
    return found


def _gpu(template: dict[str, Any]) -> bool:
    return any("nvidia.com/gpu" in c["resources"]["limits"] for c in containers(template))


# ------------------------------------------------------------ 1. queues and placement


def test_jobs_are_queued_suspended_in_kueue_with_their_priority(shared: Rendering) -> None:
    jobs = [r for r in shared.resources if r.kind == "Job"]
    assert jobs
    for job in jobs:
        labels = job.manifest["metadata"]["labels"]
        assert labels["kueue.x-k8s.io/queue-name"] == "safety-audits", job.name
        assert labels["kueue.x-k8s.io/priority-class"] == "audit-batch", job.name
        assert job.manifest["spec"]["suspend"] is True, "Kueue starts it: no deadline burns"
        # Kueue un-suspends an admitted Job: a later `pulumi up --refresh` must not undo it.
        assert job.options.ignore_changes == ("spec.suspend",), job.name
    deployment = next(r for r in shared.resources if r.kind == "Deployment")
    assert "kueue.x-k8s.io/queue-name" not in deployment.manifest["metadata"]["labels"]
    assert "priorityClassName" not in deployment.manifest["spec"]["template"]["spec"]


def test_gpu_pods_take_any_listed_product_and_cpu_pods_go_to_cpu_nodes(shared: Rendering) -> None:
    gpu_pods = 0
    for name, job in _jobs(shared).items():
        spec = job["spec"]["template"]["spec"]
        assert spec["priorityClassName"] == "batch-low", name
        if _gpu(job["spec"]["template"]):
            gpu_pods += 1
            assert spec["runtimeClassName"] == "nvidia"
            (term,) = spec["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]["nodeSelectorTerms"]
            assert term == {
                "matchExpressions": [
                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": GPU_PRODUCTS}
                ]
            }
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
                spec["tolerations"]
            )
        else:
            assert spec["nodeSelector"] == {"node-pool": "cpu"}, name
            assert spec["tolerations"] == [{"key": "pool", "operator": "Equal", "value": "cpu"}]
            assert "runtimeClassName" not in spec and "affinity" not in spec, name
    assert gpu_pods == 1, "the vLLM evaluation"


def test_a_pinned_product_outside_the_list_is_a_warning(graph: Graph) -> None:
    scheduling = {"gpuProducts": ["NVIDIA-A100-SXM4-80GB"]}
    rendering = render_manifests(
        graph, KubernetesConfig.model_validate({**STACK, "scheduling": scheduling})
    )
    (warning,) = [w for w in rendering.warnings if "gpuProducts" in w]
    assert warning.startswith("InferenceService/llm-vllm (audits/services.yaml:")
    assert "product NVIDIA-H100-80GB-HBM3 is not among" in warning
    job = _jobs(rendering)["phrases-llm"]["spec"]["template"]["spec"]
    assert job["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert "affinity" not in job, "the spec's own product decides"


def test_a_workload_priority_class_needs_a_queue() -> None:
    with pytest.raises(ValueError, match="set 'queueName' too"):
        KubernetesConfig.model_validate(
            {**STACK, "scheduling": {"workloadPriorityClass": "audit-batch"}}
        )


# ------------------------------------------------------------- 2. workload identity


def test_pods_run_as_the_configured_identity(shared: Rendering) -> None:
    account = shared.find("ServiceAccount", "audit-identity").manifest
    annotations = account["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"] == "arn:aws:iam::111122223333:role/a"
    assert account["automountServiceAccountToken"] is False
    for name, job in _jobs(shared).items():
        template = job["spec"]["template"]
        assert template["spec"]["serviceAccountName"] == "audit-identity", name
        assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true", name


def test_an_existing_account_is_used_not_created(graph: Graph) -> None:
    config = KubernetesConfig.model_validate(
        {**STACK, "serviceAccount": {"name": "platform-audits", "create": False}}
    )
    rendering = render_manifests(graph, config)
    assert not [r for r in rendering.resources if r.kind == "ServiceAccount"]
    for job in _jobs(rendering).values():
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "platform-audits"
    with pytest.raises(ValueError, match="annotate the existing account yourself"):
        KubernetesConfig.model_validate(
            {**STACK, "serviceAccount": {"create": False, "annotations": {"a": "b"}}}
        )


def test_without_a_credentials_secret_pods_carry_no_store_keys(graph: Graph) -> None:
    store = {"uri": "s3://audit-results/ci"}  # keys come from the pods' identity
    rendering = render_manifests(graph, KubernetesConfig.model_validate({"store": store}))
    for job in _jobs(rendering).values():
        for container in containers(job["spec"]["template"]):
            assert "envFrom" not in container
            assert not [e for e in container.get("env", []) if e["name"].startswith("AWS_")]


# --------------------------------------------------------- 3. weights once per cluster


def test_one_prefetch_job_per_model_fills_the_shared_cache(shared: Rendering) -> None:
    jobs = _jobs(shared)
    prefetch = jobs["tiny-llm/prefetch"]
    spec = prefetch["spec"]["template"]["spec"]
    assert not _gpu(prefetch["spec"]["template"]) and spec["nodeSelector"] == {"node-pool": "cpu"}
    (container,) = spec["containers"]
    assert container["args"] == ["runners.fetch", "model", "/etc/auditc/model.json"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HUB_CACHE"] == "/model-cache/hub" and "HF_HUB_OFFLINE" not in env
    assert "HF_TOKEN" in env, "gated models need the token"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-cache"] == {
        "name": "model-cache",
        "persistentVolumeClaim": {"claimName": "models"},
    }
    config_map = shared.find("ConfigMap", prefetch["metadata"]["name"]).manifest
    step = ModelFetchConfig.model_validate_json(config_map["data"]["model.json"])
    assert (step.repo, step.revision) == (
        "acme/tiny-llm",
        "0123456789abcdef0123456789abcdef01234567",
    )
    assert step.marker.startswith("/model-cache/auditc-prefetched/tiny-llm-")
    # The evaluation and the session that serve the model wait for it (one Job for both).
    evaluation = next(r for r in shared.resources if r.name.startswith("phrases-llm-"))
    assert f"Job/{prefetch['metadata']['name']}" in shared.waits_for(
        shared.find("Job", evaluation.name)
    )
    session = next(r for r in shared.resources if r.kind == "Deployment")
    assert f"Job/{prefetch['metadata']['name']}" in shared.waits_for(session)
    assert sum(1 for name in jobs if name.endswith("/prefetch")) == 1


def test_gpu_servers_read_the_prefetched_cache_offline_and_read_only(shared: Rendering) -> None:
    template = _jobs(shared)["phrases-llm"]["spec"]["template"]
    server = next(c for c in template["spec"]["initContainers"] if c["name"] == "server")
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_HUB_CACHE"] == "/model-cache/hub"
    assert env["HF_HOME"].startswith("/tmp/"), "tokens and modules never go to the shared volume"
    assert "HF_TOKEN" not in env, "nothing is downloaded, so no token is needed"
    mount = next(m for m in server["volumeMounts"] if m["name"] == "model-cache")
    assert mount["readOnly"] is True


def test_cpu_pods_mount_no_gpu_cache_or_shm(shared: Rendering) -> None:
    for name, job in _jobs(shared).items():
        volumes = {v["name"] for v in job["spec"]["template"]["spec"]["volumes"]}
        if name == "phrases-llm":
            assert {"shm", "model-cache"} <= volumes
        elif name != "tiny-llm/prefetch":
            assert not volumes & {"shm", "model-cache"}, name


def test_every_emptydir_is_bounded_and_requested(shared: Rendering) -> None:
    for name, job in _jobs(shared).items():
        spec = job["spec"]["template"]["spec"]
        assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
        empty = [v["emptyDir"] for v in spec["volumes"] if "emptyDir" in v]
        assert empty and all("sizeLimit" in e for e in empty), name
        disk = sum(_mib(e["sizeLimit"]) for e in empty if e.get("medium") != "Memory")
        requested = [
            c["resources"]["requests"].get("ephemeral-storage") for c in spec["containers"]
        ]
        assert sum(_mib(r) for r in requested if r) >= disk, name


def _mib(quantity: str) -> int:
    from compiler.backends.kubernetes._pods import mebibytes

    return mebibytes(quantity)


# ---------------------------------------------------------------------- 4. network


def test_job_pods_are_default_deny_with_egress_only_where_declared(shared: Rendering) -> None:
    deny = shared.find("NetworkPolicy", "auditc-jobs-default-deny").manifest["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    dns, store, extra = deny["egress"]
    assert dns["to"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
    }
    assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    # The store's endpoint_override is minio.storage:9000: its port, any address.
    assert store == {"ports": [{"port": 9000, "protocol": "TCP"}]}
    assert extra["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]
    hub = shared.find("NetworkPolicy", "auditc-jobs-hub").manifest["spec"]
    assert hub["podSelector"] == {"matchLabels": {"auditc.io/egress-hub": "true"}}
    (rule,) = hub["egress"]
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"], "not into the cluster's network"
    external = shared.find("NetworkPolicy", "auditc-external-hosted-api").manifest["spec"]
    assert external["podSelector"] == {"matchLabels": {"auditc.io/external": "hosted-api"}}
    assert external["egress"] == [{"ports": [{"port": 443, "protocol": "TCP"}]}]

    jobs = _jobs(shared)
    for name, job in jobs.items():
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["auditc.io/job-pod"] == "true", name
        assert (labels.get("auditc.io/egress-hub") == "true") == (name == "tiny-llm/prefetch"), name
        assert (labels.get("auditc.io/external") == "hosted-api") == (name == "phrases-hosted")
    session = next(r for r in shared.resources if r.kind == "Deployment").manifest
    assert "auditc.io/job-pod" not in session["spec"]["template"]["metadata"]["labels"]


def test_declared_endpoints_replace_the_defaults(graph: Graph) -> None:
    network = {
        "store": [{"namespace": "storage", "podLabels": {"app": "minio"}, "ports": [9000]}],
        "external": {"hosted-api": [{"cidr": "203.0.113.0/24", "ports": [443]}]},
    }
    rendering = render_manifests(
        graph, KubernetesConfig.model_validate({**STACK, "network": network})
    )
    deny = rendering.find("NetworkPolicy", "auditc-jobs-default-deny").manifest["spec"]
    assert deny["egress"][1]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}},
            "podSelector": {"matchLabels": {"app": "minio"}},
        }
    ]
    external = rendering.find("NetworkPolicy", "auditc-external-hosted-api").manifest["spec"]
    assert external["egress"][0]["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
    off = render_manifests(
        graph, KubernetesConfig.model_validate({**STACK, "network": {"policies": False}})
    )
    assert not [r for r in off.resources if r.kind == "NetworkPolicy" and "auditc-" in r.name]


def test_a_hub_mirror_is_where_every_download_goes(graph: Graph) -> None:
    mirror = "http://hf-mirror.tools.svc:8080"
    with_cache = {**STACK, "hubEndpoint": mirror, "modelCache": {"pvc": {"claimName": "m"}}}
    rendering = render_manifests(graph, KubernetesConfig.model_validate(with_cache))
    jobs = _jobs(rendering)
    (prefetch,) = jobs["tiny-llm/prefetch"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "HF_ENDPOINT", "value": mirror} in prefetch["env"]
    hub = rendering.find("NetworkPolicy", "auditc-jobs-hub").manifest["spec"]
    assert hub["egress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}], "its port"
    # Without a shared cache, the server downloads the weights itself: from the mirror.
    download = {**STACK, "hubEndpoint": mirror}
    rendering = render_manifests(graph, KubernetesConfig.model_validate(download))
    template = _jobs(rendering)["phrases-llm"]["spec"]["template"]
    server = next(c for c in template["spec"]["initContainers"] if c["name"] == "server")
    assert {"name": "HF_ENDPOINT", "value": mirror} in server["env"]
    # Declared Hub rules win over the endpoint's port.
    declared = {**download, "network": {"hub": [{"cidr": "10.1.2.3/32", "ports": [8080]}]}}
    rendering = render_manifests(graph, KubernetesConfig.model_validate(declared))
    hub = rendering.find("NetworkPolicy", "auditc-jobs-hub").manifest["spec"]
    assert hub["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]
    with pytest.raises(ValueError, match="hubEndpoint"):
        KubernetesConfig.model_validate({**STACK, "hubEndpoint": "hf-mirror:8080"})


# ------------------------------------------------------------ 6. asynchronous runs


@pytest.fixture(scope="module")
def asynchronous(graph: Graph) -> Rendering:
    config = {**STACK, "jobs": {"waitForCompletion": False}}
    return render_manifests(graph, KubernetesConfig.model_validate(config))


def test_asynchronous_jobs_are_not_awaited_and_wait_for_their_inputs(
    asynchronous: Rendering, rendering: Rendering, graph: Graph
) -> None:
    jobs = _jobs(asynchronous)
    synchronous = _jobs(rendering)
    for name, job in jobs.items():
        assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", name
        init = job["spec"]["template"]["spec"].get("initContainers", [])
        node = graph[name.split("/")[0]]
        reads_others = name.endswith("/commit") or any(
            graph[up].is_workflow for up in graph.upstream(node.name)
        )
        assert (init[:1] and init[0]["name"] == "wait") == bool(reads_others), name
        if name.endswith("/commit") or not reads_others:
            continue
        config_map = asynchronous.find("ConfigMap", job["metadata"]["name"]).manifest["data"]
        wait = WaitConfig.model_validate_json(config_map["wait.json"])
        assert {n.key for n in wait.nodes} <= {graph[up].key for up in graph.upstream(node.name)}
        assert all(n.uri.startswith("s3://audit-results/ci/") for n in wait.nodes)
        # Its pods wait for the upstream nodes within its own deadline.
        assert (
            job["spec"]["activeDeadlineSeconds"]
            > synchronous[name]["spec"]["activeDeadlineSeconds"]
        ), name
    case = jobs["case"]["spec"]["activeDeadlineSeconds"]
    assert case >= sum(
        synchronous[n]["spec"]["activeDeadlineSeconds"] for n in ("phrases", "case")
    ), "a chain's deadlines add up"


# --------------------------------------------------------- 7. previews people can read


def test_each_audit_node_is_a_component_whose_resources_keep_their_urns(
    rendering: Rendering, graph: Graph
) -> None:
    for resource in rendering.resources:
        name = (resource.manifest["metadata"].get("labels") or {}).get("auditc.io/name")
        if name is None or resource.name.startswith("auditc-"):
            assert "$auditc:audit:" not in resource.urn, resource.urn
            continue
        kind = graph[name].kind
        assert resource.options.parent.endswith(f"$auditc:audit:{kind}::{name}"), resource.urn
        assert f"::auditc:audit:{kind}$kubernetes:" in resource.urn
        assert "no parent" in resource.options.aliases, (
            f"{resource.urn}: without an alias to its root URN, an existing stack would "
            "replace (re-run) it"
        )


def test_stack_outputs_carry_safety_cases(rendering: Rendering) -> None:
    (case,) = rendering.outputs["safetyCases"].values()
    assert case["uri"].startswith("s3://audit-results/ci/method/case/")
    assert case["report"].endswith("/_case/index.html") and "?" not in case["report"]
    assert case["status"] == "not read", "compile never reads the store"


def test_safety_case_scores_come_from_the_store_with_their_gates(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "method" / "case" / "abc")
    assert safety_case_scores(str(tmp_path / "method/case/abc"), "abc")["status"] == "not run"
    now = "2026-01-01T00:00:00+00:00"
    scores = (
        ScoresFile(
            method="case",
            id="abc",
            scores=[
                ScoreValue(name="fpr_gap", value=0.3, gate_max=0.1),
                ScoreValue(name="accuracy", value=0.97, gate_min=0.9),
                ScoreValue(name="rows", value=12),
            ],
        )
        .model_dump_json()
        .encode()
    )
    store.write_bytes(scores, case_file(SCORES_FILE))
    store.write_manifest(
        "",
        Manifest.model_validate(
            json.loads(
                json.dumps(
                    {
                        "kind": "Method",
                        "name": "case",
                        "id": "abc",
                        "status": "complete",
                        "spec": {},
                        "auditc_version": "0",
                        "started_at": now,
                        "finished_at": now,
                        "duration_s": 1.0,
                        "outputs": {
                            case_file(SCORES_FILE): FileDigest.of(scores).model_dump(mode="json")
                        },
                    }
                )
            )
        ),
    )
    found = safety_case_scores(str(tmp_path / "method/case/abc"), "abc")
    assert found["status"] == "complete"
    assert {k: v["gate"] for k, v in found["scores"].items()} == {
        "fpr_gap": "fail",
        "accuracy": "pass",
        "rows": None,
    }
    assert safety_case_scores(str(tmp_path / "method/case/abc"), "other")["status"] == "not run"
