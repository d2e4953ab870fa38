"""The stack's `externalConcurrency`: a cap on the total in flight to an external service,
shared out among an Evaluation's shards through each shard's `concurrency_cap`."""

from __future__ import annotations

from k8s_helpers import STACK

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig
from compiler.backends.kubernetes._pod_files import evaluation_files
from runners.evaluation import EvaluationConfig


def _step(graph: Graph, name: str, config: KubernetesConfig) -> EvaluationConfig:
    files = evaluation_files(graph, graph[name], config)
    return EvaluationConfig.model_validate_json(files.data["step.json"])


def test_external_services_get_each_shards_share_of_the_stack_cap(graph: Graph) -> None:
    capped = KubernetesConfig.model_validate({**STACK, "externalConcurrency": 12})
    assert _step(graph, "phrases-hosted", capped).concurrency_cap == 12  # one shard
    # Other runners talk to their own sidecar: the cap is about shared services only.
    assert _step(graph, "phrases-llm", capped).concurrency_cap is None
    uncapped = KubernetesConfig.model_validate(STACK)
    assert _step(graph, "phrases-hosted", uncapped).concurrency_cap is None


def test_a_share_is_at_least_one() -> None:
    from compiler.backends.kubernetes._pod_files import _shard_share

    assert [_shard_share(10, n) for n in (1, 3, 10, 40)] == [10, 3, 1, 1]
    assert _shard_share(None, 4) is None
