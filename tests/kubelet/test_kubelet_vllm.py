"""The llm-gpu audit's vLLM evaluation on the test cluster, with a stand-in for vLLM.

The vLLM image cannot run here (no image, no GPU), so `vllm` is a stand-in
(`vllm_stand_in/vllm`) that refuses to start without what vLLM needs from the pod —
a user name although the image has no passwd entry for uid 10001, writable caches
under the read-only root, and a parallel split that uses every GPU the pod was given
(the test kubelet hands out fake devices for `nvidia.com/gpu` limits, as the device
plugin does) — and then answers the OpenAI API. Everything else is the compiled
manifests, run as in the tutorial's test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubelet_network import NodeNetwork
from kubelet_store import S3Server
from kubelet_support import REPO, STORE_SECRET, auditc, describe, new_cluster, write_project

LLM_GPU = REPO / "audits" / "llm-gpu"


@pytest.mark.slow
def test_a_two_gpu_vllm_server_starts_as_uid_10001_and_serves_the_evaluation(
    node: NodeNetwork, s3: S3Server, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "project",
        LLM_GPU,
        {
            "store": {"uri": s3.uri("llm-gpu"), "credentialsSecret": STORE_SECRET},
            "select": ["qwen-on-refusal-prompts"],
        },
    )
    system = project / "audits" / "llm-gpu" / "system.yaml"
    text = system.read_text()
    assert text.count("accelerator: {kind: nvidia.com/gpu, count: 1}") == 1
    system.write_text(text.replace("count: 1}", "count: 2}"))
    auditc(project, "compile", "--stack", "kubelet", "--out", "manifests")
    auditc(project, "push", "--stack", "kubelet", node=node)

    result = new_cluster(node, tmp_path / "cluster").apply(project / "manifests")
    assert result.succeeded, describe(result)
    (evaluation,) = [
        j
        for n, j in result.jobs.items()
        if n.startswith("qwen-on-refusal-prompts-") and not n.endswith("-commit")
    ]
    (pod,) = evaluation.pods
    server, client = pod.containers["server"], pod.containers["client"]
    assert (
        "vllm stand-in: serving ['qwen2-5-1-5b-instruct', 'qwen-chat'] on 0.0.0.0:8000"
        in server.log()
    )
    assert server.restarts == 0 and client.exit_codes == [0], describe(result)
    assert "200 rows (0 resumed), 0 errors" in client.log()
