"""What the Kubernetes API server refuses beyond the OpenAPI schemas.

`kubernetes-validate` checks manifests against the OpenAPI schemas: types, required
fields, unknown fields. The API server then applies rules the schemas do not carry
(`k8s.io/apimachinery/pkg/util/validation`, `pkg/apis/core/validation`); a manifest
that breaks one is refused by `kubectl apply`/`pulumi up` although it "validated".
These are checked here:

- object size: etcd refuses requests over 1.5 MiB (`--max-request-bytes`); a
  ConfigMap's `data` + `binaryData` may hold at most 1 MiB, its keys are `[-._a-zA-Z0-9]+`;
- names: DNS-1123 subdomains (at most 253), labels (at most 63) for Namespaces,
  containers, volumes and ports' pods, DNS-1035 labels for Services; a Job's name is
  also a label value (`job-name`), so at most 63, and an Indexed Job's pods are named
  `<job>-<index>` as their hostname, a DNS label;
- labels and selectors (`metadata.labels`, `matchLabels`, `nodeSelector`): qualified
  keys and label values (at most 63 characters, alphanumeric at both ends);
- annotations: qualified keys, 256 KiB in all;
- containers: unique DNS-label names, IANA service names for ports (at most 15),
  environment variable names without `=`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import BackendError, Issue, SpecError

from ._names import LABEL_PREFIX

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = [
    "ANNOTATIONS_LIMIT",
    "CONFIG_MAP_DATA_LIMIT",
    "OBJECT_SIZE_LIMIT",
    "LimitProblem",
    "check_limits",
    "limit_problems",
]

OBJECT_SIZE_LIMIT = 1536 * 1024
"""Bytes of one object's JSON that etcd accepts (its default `--max-request-bytes`)."""
CONFIG_MAP_DATA_LIMIT = 1024 * 1024
"""Bytes of a ConfigMap's data and binaryData together (`corev1.MaxSecretSize`)."""
ANNOTATIONS_LIMIT = 256 * 1024
"""Bytes of all annotation keys and values of one object (`TotalAnnotationSizeLimitB`)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL_NAMED = ("Namespace",)
_SERVICE_NAMED = ("Service",)
_POD_OWNERS = ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@dataclass(frozen=True)
class LimitProblem:
    """One rule a manifest breaks."""

    path: str
    """Dotted path inside the manifest (`data`, `spec.template.spec.nodeSelector`)."""
    message: str
    """What was found and what the API server accepts."""


_SIZE_HINT = (
    "; the node's resolved spec is copied into it, so large values in the spec (parameters, "
    "adapter templates, documentation) belong in a data file or a Dataset"
)


def check_limits(named: list[tuple[str, dict[str, Any]]], graph: Graph | None = None) -> None:
    """Raise when a manifest breaks a rule the API server enforces beyond the schemas.

    Args:
        named: `(file name, manifest)` pairs, as `compile --out` names the files.
        graph: the graph the manifests were rendered from; each problem is then
            reported at the resource it comes from (its file, line and column).

    Raises:
        SpecError: with `graph`, one issue per problem, at the resource it comes from.
        BackendError: without `graph`, every problem listed by manifest file.
    """
    found = [(file, manifest, p) for file, manifest in named for p in limit_problems(manifest)]
    if not found:
        return
    if graph is None:
        raise BackendError(
            f"{len(found)} problem(s) the Kubernetes API server would refuse:\n"
            + "\n".join(f"{file}: {p.path}: {p.message}" for file, _, p in found)
        )
    raise SpecError([_issue(file, manifest, problem, graph) for file, manifest, problem in found])


def _issue(file: str, manifest: dict[str, Any], problem: LimitProblem, graph: Graph) -> Issue:
    metadata = manifest.get("metadata") or {}
    what = f"{manifest.get('kind')} {metadata.get('name')} ({file}): {problem.path}: "
    hint = _SIZE_HINT if "bytes" in problem.message else ""
    message = f"{what}{problem.message}{hint}"
    node = graph.nodes.get(str((metadata.get("labels") or {}).get(f"{LABEL_PREFIX}/name")))
    if node is None:
        return Issue(file, 0, 0, message, "kubernetes-limit")
    where = node.location
    return Issue(where.file, where.line, where.column, message, "kubernetes-limit", node.key)


def limit_problems(manifest: dict[str, Any]) -> list[LimitProblem]:
    """Every rule beyond the OpenAPI schema that `manifest` breaks (empty when none)."""
    problems = list(_object_problems(manifest))
    kind = manifest.get("kind")
    if kind == "ConfigMap":
        problems.extend(_config_map_problems(manifest))
    pod_path, pod = _pod_spec(manifest)
    if pod is not None:
        problems.extend(_pod_problems(pod, pod_path))
    return problems


def _object_problems(manifest: dict[str, Any]) -> Iterator[LimitProblem]:
    size = len(json.dumps(manifest, separators=(",", ":")).encode())
    if size > OBJECT_SIZE_LIMIT:
        yield LimitProblem(
            "(root)",
            f"the object is {size:,} bytes as JSON; the API server (etcd) refuses more than "
            f"{OBJECT_SIZE_LIMIT:,}",
        )
    metadata = manifest.get("metadata") or {}
    yield from _name_problems(str(manifest.get("kind")), metadata.get("name"), manifest)
    yield from _label_problems(metadata.get("labels"), "metadata.labels")
    yield from _annotation_problems(metadata.get("annotations"), "metadata.annotations")
    spec = manifest.get("spec") or {}
    selector = (spec.get("selector") or {}) if isinstance(spec, dict) else {}
    if isinstance(selector, dict):
        yield from _label_problems(selector.get("matchLabels"), "spec.selector.matchLabels")
        if manifest.get("kind") == "Service":
            yield from _label_problems(selector, "spec.selector")
    pod_selector = spec.get("podSelector") if isinstance(spec, dict) else None
    if isinstance(pod_selector, dict):
        yield from _label_problems(pod_selector.get("matchLabels"), "spec.podSelector.matchLabels")


def _name_problems(kind: str, name: Any, manifest: dict[str, Any]) -> Iterator[LimitProblem]:
    if not isinstance(name, str):
        return
    if kind in _SERVICE_NAMED:
        if len(name) > 63 or not _DNS_1035.match(name):
            yield LimitProblem(
                "metadata.name",
                f"{name!r} is not a DNS-1035 label (a letter, then lower-case letters, digits "
                "and '-', at most 63 characters), which a Service's name must be",
            )
        return
    if kind in _LABEL_NAMED or kind == "Job":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            why = "a Job's name is also its pods' job-name label" if kind == "Job" else ""
            yield LimitProblem(
                "metadata.name",
                f"{name!r} is not a DNS-1123 label (lower-case letters, digits and '-', at most "
                f"63 characters){'; ' + why if why else ''}",
            )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        yield LimitProblem(
            "metadata.name",
            f"{name!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at "
            "most 253 characters)",
        )
    spec = manifest.get("spec") or {}
    if kind == "Job" and isinstance(spec, dict) and spec.get("completionMode") == "Indexed":
        last = max(int(spec.get("completions") or 1) - 1, 0)
        hostname = f"{name}-{last}"
        if len(hostname) > 63:
            yield LimitProblem(
                "metadata.name",
                f"an Indexed Job's pods get the hostname <name>-<index> ({hostname!r}, "
                f"{len(hostname)} characters), which must be a DNS label of at most 63",
            )


def _label_problems(labels: Any, path: str) -> Iterator[LimitProblem]:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        yield from _key_problems(str(key), f"{path}.{key}")
        text = "" if value is None else str(value)
        if len(text) > 63 or not _LABEL_VALUE.match(text):
            yield LimitProblem(
                f"{path}.{key}",
                f"{_short(text)} is not a label value (at most 63 letters, digits, '-', '_' and "
                "'.', starting and ending with a letter or digit)",
            )


def _key_problems(key: str, path: str) -> Iterator[LimitProblem]:
    prefix, slash, name = key.rpartition("/")
    bad_prefix = slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))
    if bad_prefix or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        yield LimitProblem(
            path,
            f"{_short(key)} is not a qualified name ([DNS-subdomain prefix/]name, the name at "
            "most 63 letters, digits, '-', '_' and '.', alphanumeric at both ends)",
        )


def _annotation_problems(annotations: Any, path: str) -> Iterator[LimitProblem]:
    if not isinstance(annotations, dict):
        return
    total = 0
    for key, value in annotations.items():
        yield from _key_problems(str(key), f"{path}.{key}")
        total += len(str(key).encode()) + len(str(value).encode())
    if total > ANNOTATIONS_LIMIT:
        yield LimitProblem(
            path, f"annotations total {total:,} bytes; the API server accepts {ANNOTATIONS_LIMIT:,}"
        )


def _config_map_problems(manifest: dict[str, Any]) -> Iterator[LimitProblem]:
    size = 0
    for field in ("data", "binaryData"):
        for key, value in (manifest.get(field) or {}).items():
            if len(key) > 253 or not _CONFIG_MAP_KEY.match(key):
                yield LimitProblem(
                    f"{field}.{key}",
                    f"{_short(key)} is not a ConfigMap key (letters, digits, '-', '_' and '.')",
                )
            size += len(key.encode()) + len(str(value).encode())
    if size > CONFIG_MAP_DATA_LIMIT:
        yield LimitProblem(
            "data",
            f"the ConfigMap holds {size:,} bytes of data; the API server refuses more than "
            f"{CONFIG_MAP_DATA_LIMIT:,}",
        )


def _pod_spec(manifest: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return "", None
    if manifest.get("kind") == "Pod":
        return "spec", spec
    if manifest.get("kind") in _POD_OWNERS:
        template = spec.get("template") or {}
        if isinstance(template, dict):
            metadata = template.get("metadata") or {}
            pod = template.get("spec")
            if isinstance(pod, dict):
                pod = dict(pod)
                pod["__labels__"] = metadata.get("labels")
                return "spec.template.spec", pod
    return "", None


def _pod_problems(pod: dict[str, Any], path: str) -> Iterator[LimitProblem]:
    template = path.removesuffix(".spec")
    yield from _label_problems(pod.get("__labels__"), f"{template}.metadata.labels")
    yield from _label_problems(pod.get("nodeSelector"), f"{path}.nodeSelector")
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(field) or []):
            where = f"{path}.{field}.{i}"
            name = str(container.get("name"))
            if name in names:
                yield LimitProblem(f"{where}.name", f"container name {name!r} is used twice")
            names.add(name)
            yield from _dns_label(name, f"{where}.name", "a container name")
            for j, port in enumerate(container.get("ports") or []):
                port_name = port.get("name")
                if port_name is not None and not _is_port_name(str(port_name)):
                    yield LimitProblem(
                        f"{where}.ports.{j}.name",
                        f"{_short(str(port_name))} is not an IANA service name (at most 15 "
                        "lower-case letters, digits and '-', with a letter, no '--')",
                    )
            for j, env in enumerate(container.get("env") or []):
                env_name = str(env.get("name", ""))
                if not env_name or "=" in env_name or not env_name.isprintable():
                    yield LimitProblem(
                        f"{where}.env.{j}.name",
                        f"{_short(env_name)} is not an environment variable name (printable, no '=')",
                    )
    for i, volume in enumerate(pod.get("volumes") or []):
        yield from _dns_label(str(volume.get("name")), f"{path}.volumes.{i}.name", "a volume name")


def _dns_label(name: str, path: str, what: str) -> Iterator[LimitProblem]:
    if len(name) > 63 or not _DNS_LABEL.match(name):
        yield LimitProblem(
            path,
            f"{_short(name)} is not a DNS-1123 label (lower-case letters, digits and '-', at most "
            f"63 characters), which {what} must be",
        )


def _is_port_name(name: str) -> bool:
    return (
        len(name) <= 15
        and bool(_PORT_NAME.match(name))
        and "--" not in name
        and any(c.isalpha() for c in name)
    )


def _short(text: str) -> str:
    return repr(text) if len(text) <= 50 else repr(text[:49]) + "…"
