"""The Kubernetes backend: the graph as a Pulumi program of typed `pulumi_kubernetes` resources.

- `deploy(graph, config)` is the program body (`pulumi_main.py` runs it under the engine);
- `render_manifests(graph, config)` runs the same program under Pulumi's mock runtime and
  returns every declared object; `write_manifests` and `validate_manifests` write them as
  `NN-kind-name.yaml` and check them with `kubernetes-validate --strict`;
- `push_inputs(graph, store)` uploads the files an audit reads to the store,
  content-addressed, for the pods' fetch step;
- `KubernetesConfig` / `load_stack_config` read a stack's `auditc:` settings;
- `stack_reruns(graph, before, after)` says which workflows a change of stack settings
  re-runs (their Jobs are replaced), for `auditc plan --stack`;
- `stack_status(graph, jobs, committed)` joins a deployment's Jobs (`read_jobs`) with the
  store (`committed_ids`), for `auditc status` and `auditc wait`.

Only this package imports `pulumi`/`pulumi_kubernetes`, and only when a name that
needs them is used, so `auditc push` never pays for them.

Example:
    >>> from compiler import load_project, resolve_graph                 # doctest: +SKIP
    >>> from compiler.backends.kubernetes import load_stack_config, render_manifests
    >>> graph = resolve_graph(load_project(root, [root / "audits"]))      # doctest: +SKIP
    >>> rendering = render_manifests(graph, load_stack_config(root / "stacks/Pulumi.dev.yaml"))
    >>> [r.name for r in rendering.resources if r.kind == "Job"]          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._budget import check_budget
from ._inputs import InputFile, PushResult, graph_inputs, push_inputs
from ._names import object_name
from ._stack_config import (
    CONFIG_NAMESPACE,
    DEFAULT_RUNNER_IMAGE,
    KubernetesConfig,
    load_stack_config,
    stack_file,
    stack_values,
)
from ._stack_plan import StackBaseline, apply_stack_reruns, stack_config_at, stack_reruns
from ._status import StackStatus, committed_ids, read_jobs, stack_status

if TYPE_CHECKING:
    from ._program import deploy
    from ._render import (
        KUBERNETES_VERSION,
        RenderedResource,
        Rendering,
        render_manifests,
        validate_manifests,
        write_manifests,
    )

__all__ = [
    "CONFIG_NAMESPACE",
    "DEFAULT_RUNNER_IMAGE",
    "KUBERNETES_VERSION",
    "InputFile",
    "KubernetesConfig",
    "PushResult",
    "StackBaseline",
    "StackStatus",
    "RenderedResource",
    "Rendering",
    "apply_stack_reruns",
    "check_budget",
    "committed_ids",
    "deploy",
    "graph_inputs",
    "load_stack_config",
    "object_name",
    "push_inputs",
    "read_jobs",
    "render_manifests",
    "stack_config_at",
    "stack_file",
    "stack_reruns",
    "stack_status",
    "stack_values",
    "validate_manifests",
    "write_manifests",
]

_LAZY = {
    "deploy": "._program",
    "KUBERNETES_VERSION": "._render",
    "RenderedResource": "._render",
    "Rendering": "._render",
    "render_manifests": "._render",
    "validate_manifests": "._render",
    "write_manifests": "._render",
}


def __getattr__(name: str) -> Any:
    """Import the pulumi-backed names on first use (importing pulumi_kubernetes takes ~1 s)."""
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name], __name__)
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] in ("pulumi", "pulumi_kubernetes"):
                from schemas import MissingDependencyError

                raise MissingDependencyError(
                    "the Kubernetes backend needs pulumi and pulumi-kubernetes: "
                    "pip install 'auditc[kubernetes]'"
                ) from exc
            raise
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
