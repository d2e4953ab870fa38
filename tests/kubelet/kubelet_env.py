"""What the kubelet computes before it starts a container: its environment and argv.

- `$(VAR)` references in `env` values, `command` and `args` are expanded from the
  variables the container defines (earlier `env` entries and `envFrom`), as Kubernetes
  does: `$$` escapes a `$`, and a reference to an undefined variable is left as is;
- `valueFrom` reads a Secret or ConfigMap key, or a pod field (the Downward API);
- `envFrom` adds every key of a Secret or ConfigMap.

A missing Secret, ConfigMap or key that is not `optional` is a
`CreateContainerConfigError`, as on a cluster: the container does not start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ContainerConfigError",
    "PodFields",
    "Sources",
    "container_argv",
    "container_env",
    "expand",
]

_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class ContainerConfigError(Exception):
    """The container cannot be configured (the kubelet's CreateContainerConfigError)."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion (k8s.io/kubernetes/third_party/forked/golang/expansion)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 >= len(text):
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(variables[name] if name in variables else text[i : end + 1])
            i = end + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class PodFields:
    """What the Downward API can tell a container about its pod."""

    name: str
    namespace: str
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    ip: str
    node_name: str
    service_account: str

    def get(self, path: str) -> str:
        """The value of a `fieldRef.fieldPath`."""
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": self.ip.rsplit(".", 1)[0] + ".1",
            "spec.nodeName": self.node_name,
            "spec.serviceAccountName": self.service_account,
        }
        if path in simple:
            return simple[path]
        match = _FIELD.match(path)
        if match is None:
            raise ContainerConfigError(f"fieldRef {path!r} is not supported by the Downward API")
        source = self.labels if match[1] == "labels" else self.annotations
        return source.get(match[2], "")


@dataclass(frozen=True)
class Sources:
    """The Secrets and ConfigMaps of the pod's namespace: name → key → value."""

    secrets: Mapping[str, Mapping[str, str]]
    config_maps: Mapping[str, Mapping[str, str]]

    def lookup(self, kind: str, name: str, key: str | None, optional: bool) -> Any:
        store = self.secrets if kind == "secret" else self.config_maps
        if name not in store:
            if optional:
                return None
            raise ContainerConfigError(f'{kind} "{name}" not found')
        if key is None:
            return store[name]
        if key not in store[name]:
            if optional:
                return None
            raise ContainerConfigError(f'couldn\'t find key {key} in {kind} "{name}"')
        return store[name][key]


def container_env(spec: Mapping[str, Any], sources: Sources, fields: PodFields) -> dict[str, str]:
    """The variables the container spec defines (`envFrom`, then `env`), expanded."""
    env: dict[str, str] = {}
    for source in spec.get("envFrom") or []:
        kind, ref = (
            ("secret", source["secretRef"])
            if "secretRef" in source
            else (
                "configmap",
                source["configMapRef"],
            )
        )
        values = sources.lookup(kind, ref["name"], None, bool(ref.get("optional")))
        prefix = source.get("prefix", "")
        env.update({prefix + k: v for k, v in (values or {}).items()})
    for item in spec.get("env") or []:
        value = _value(item, env, sources, fields)
        if value is not None:
            env[item["name"]] = value
    return env


def _value(
    item: Mapping[str, Any], env: Mapping[str, str], sources: Sources, fields: PodFields
) -> str | None:
    if "valueFrom" not in item:
        return expand(str(item.get("value", "")), env)
    source = item["valueFrom"]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return sources.lookup("secret", ref["name"], ref["key"], bool(ref.get("optional")))  # type: ignore[no-any-return]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return sources.lookup("configmap", ref["name"], ref["key"], bool(ref.get("optional")))  # type: ignore[no-any-return]
    if "fieldRef" in source:
        return fields.get(source["fieldRef"]["fieldPath"])
    raise ContainerConfigError(f"env {item['name']}: valueFrom {sorted(source)} is not supported")


def container_argv(
    spec: Mapping[str, Any], env: Mapping[str, str], entrypoint: list[str], cmd: list[str]
) -> list[str]:
    """`command` (else the image's entrypoint) + `args` (else, without `command`, its cmd)."""
    command = spec.get("command")
    args = spec.get("args")
    if command is None:
        command = entrypoint
        if args is None:
            args = cmd
    argv = [expand(str(word), env) for word in [*command, *(args or [])]]
    if not argv:
        raise ContainerConfigError("no command specified")
    return argv
