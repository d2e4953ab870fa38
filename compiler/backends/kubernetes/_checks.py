"""What compiles but cannot work in a pod: warnings for `auditc compile` and `pulumi preview`.

- an `external` service on a loopback address: in a pod, `127.0.0.1` is the pod
  itself, not the machine where the URL worked;
- a `python`-runner Model whose package the runner image does not contain
  (`auditc:images.runnerPackages` records what the image was built with);
- a `huggingface`-runner service when the image was built without the
  `huggingface` extra (`auditc:images.runnerExtras`);
- a GPU service that pins an `accelerator.product` that `scheduling.gpuProducts` leaves out.

`image_problems` lists every image the pods would run that is named by tag instead of
by digest: a warning, or an error with `images.requireDigests` / `compile --require-digests`.

Pure: reads the graph and the stack settings only.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from schemas import InferenceService, Model

from ._stack_config import KubernetesConfig

if TYPE_CHECKING:
    from ..._resolve import Graph, Node

__all__ = ["image_problems", "pod_images", "pod_warnings"]

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def pod_warnings(graph: Graph, config: KubernetesConfig) -> list[str]:
    """One message per service in `graph` that would not work in a pod, in graph order."""
    found: list[str] = []
    for node in graph:
        if isinstance(node.resource, InferenceService):
            found += _service_warnings(graph, node, config)
    return found


def _service_warnings(graph: Graph, node: Node, config: KubernetesConfig) -> list[str]:
    service = node.resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    where = f"InferenceService/{node.name} ({node.location})"
    accelerator = service.spec.resources.accelerator
    products = config.scheduling.gpu_products
    if accelerator is not None and accelerator.product and products:  # noqa: SIM102
        if accelerator.product not in products:
            return [
                f"{where}: resources.accelerator.product {accelerator.product} is not among "
                f"auditc:scheduling.gpuProducts ({', '.join(products)}); its pods are placed "
                "on that product's nodes only"
            ]
    if runner.kind == "external" and _is_loopback(runner.url):
        return [
            f"{where}: runner.url {runner.url} is a loopback address: in a pod it reaches "
            "the pod itself, not the machine where it works; use an address the cluster "
            "can reach"
        ]
    if runner.kind == "huggingface" and "huggingface" not in config.images.runner_extras:
        return [
            f"{where}: a huggingface runner needs the runner image built with "
            "--build-arg EXTRAS=run,notebooks,huggingface, and auditc:images.runnerExtras does not list "
            "it; build the image so and add `runnerExtras: [huggingface]`"
        ]
    if runner.kind == "python" and service.spec.model is not None:
        model = graph[service.spec.model].resource
        assert isinstance(model, Model)
        package = model.spec.python.package if model.spec.python is not None else None
        if package is not None:
            problem = _missing_package(package, config.images.runner_packages)
            if problem is not None:
                return [f"{where}: Model/{model.name} {problem}"]
    return []


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _missing_package(wanted: str, installed: list[str]) -> str | None:
    """Why `wanted` (a pip requirement) is not satisfied by the image's packages, or None."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    need = Requirement(wanted)
    name = canonicalize_name(need.name)
    hint = (
        "build the runner image with --build-arg EXTRA_PACKAGES=... including it and list "
        "it in auditc:images.runnerPackages"
    )
    for item in installed:
        have = Requirement(item)
        if canonicalize_name(have.name) != name:
            continue
        pinned = [s.version for s in have.specifier if s.operator in ("==", "===")]
        if not need.specifier or any(need.specifier.contains(v, prereleases=True) for v in pinned):
            return None
        return (
            f"needs {wanted}, but the runner image has {item} (auditc:images.runnerPackages); "
            + hint
        )
    return f"needs {wanted}, which the runner image does not list; " + hint


def pod_images(graph: Graph, config: KubernetesConfig) -> dict[str, str]:
    """Every image the graph's pods run → where it comes from (`auditc:images.runner`, …)."""
    found: dict[str, str] = {config.images.runner: "auditc:images.runner"}
    for node in graph:
        service = node.resource
        if not isinstance(service, InferenceService):
            continue
        runner = service.spec.runner
        if runner.kind == "vllm":
            if config.images.vllm is not None:
                found.setdefault(config.images.vllm, "auditc:images.vllm")
            else:
                found.setdefault(runner.image, f"InferenceService/{node.name} runner.image")
        elif runner.kind == "container":
            found.setdefault(runner.image, f"InferenceService/{node.name} runner.image")
    return found


def image_problems(graph: Graph, config: KubernetesConfig) -> list[str]:
    """One message per image named by a tag instead of a digest (`repo@sha256:…`)."""
    return [
        f"{where}: image {reference} is named by tag, not by digest: the registry can "
        "change what it runs; pin it as repo@sha256:… (`docker buildx imagetools inspect "
        f"{reference}` prints the digest)"
        for reference, where in pod_images(graph, config).items()
        if "@" not in reference
    ]
