"""Do external services still answer with the fingerprints their stored results were made with?

`auditc plan` and `auditc run` ask each `external` service whose Evaluations are
complete in the store with a recorded fingerprint, all at once and for at most a few
seconds, and warn where the live answer differs: the same URL may now serve another
model, and the stored results (which the node id says are current) would describe a
system that no longer exists. Nothing here ever fails a command or waits long: a
service that cannot be asked is reported as such.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from schemas import Evaluation, ExternalRunner, InferenceService, Manifest, local_manifests

if TYPE_CHECKING:
    from .._resolve import Graph, Node

__all__ = ["CHECK_TIMEOUT_S", "ServiceCheck", "check_fingerprints", "service_version"]

CHECK_TIMEOUT_S = 5.0
"""Longest the whole check may take (the services are asked at the same time)."""


@dataclass
class ServiceCheck:
    """One external service: what its stored Evaluations recorded, and what it says now."""

    service: InferenceService
    stored: dict[str, str] = field(default_factory=dict)
    """`Evaluation/name` → the fingerprint recorded when it ran."""
    live: str | None = None
    error: str | None = None

    def warnings(self) -> list[str]:
        """One line per Evaluation whose stored fingerprint the live one contradicts."""
        assert isinstance(self.service.spec.runner, ExternalRunner)
        name, url = self.service.name, self.service.spec.runner.url
        if self.live is None:
            stored = ", ".join(f"{k} ({v})" for k, v in sorted(self.stored.items()))
            return [
                f"cannot check whether InferenceService/{name} changed: "
                f"{self.error or 'no answer'}; its stored results were made when it answered "
                f"{stored}"
            ]
        return [
            f"InferenceService/{name} at {url} now answers with fingerprint {self.live}, but "
            f"{key}'s stored results were made when it answered {fingerprint}: the service "
            f"changed behind its URL (re-run with `auditc run --force --select "
            f"{key.split('/', 1)[1]}`, and declare the change in runner.version)"
            for key, fingerprint in sorted(self.stored.items())
            if fingerprint != self.live
        ]


def service_version(graph: Graph, node: Node) -> str | None:
    """The declared `runner.version` of an Evaluation's external service (for its manifest)."""
    evaluation = node.resource
    if not isinstance(evaluation, Evaluation) or evaluation.spec.service is None:
        return None  # an imported Evaluation runs no service
    service = graph[evaluation.spec.service].resource
    if not isinstance(service, InferenceService):
        return None
    runner = service.spec.runner
    return runner.version if isinstance(runner, ExternalRunner) else None


def check_fingerprints(
    graph: Graph, store: str, *, timeout_s: float = CHECK_TIMEOUT_S
) -> list[str]:
    """Warnings for complete Evaluations whose external service answers differently now.

    Args:
        graph: the resolved specs.
        store: the store URI or directory whose manifests hold the recorded fingerprints.
        timeout_s: the most the check may take in all.

    Returns:
        Human-readable warnings (empty when nothing changed or nothing was recorded).
    """
    checks = _recorded(graph, _manifests(store))
    if not checks:
        return []
    threads = [
        threading.Thread(target=_ask, args=(check, timeout_s), daemon=True) for check in checks
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s + 0.5
    for thread in threads:
        # Daemon threads: one stuck in a DNS lookup neither delays the answer nor the exit.
        thread.join(max(0.0, deadline - time.monotonic()))
    for check in checks:
        if check.live is None and check.error is None:
            check.error = f"no answer within {timeout_s:g} s"
    return [line for check in checks for line in check.warnings()]


def _manifests(store: str) -> Iterable[Manifest]:
    if "://" not in store:
        local = Path(store).expanduser()
        return local_manifests(local) if local.is_dir() else []
    from schemas import Store

    return Store.open(store, create=False).manifests()


def _recorded(graph: Graph, manifests: Iterable[Manifest]) -> list[ServiceCheck]:
    """The services to ask: those whose current Evaluations have a recorded fingerprint."""
    ids = {node.key: node.id for node in graph if node.kind == "Evaluation"}
    checks: dict[str, ServiceCheck] = {}
    for manifest in manifests:
        key = f"{manifest.kind}/{manifest.name}"
        if ids.get(key) != manifest.id or manifest.status != "complete":
            continue
        if manifest.service_fingerprint is None:
            continue
        evaluation = graph[manifest.name].resource
        assert isinstance(evaluation, Evaluation)
        if evaluation.spec.service is None:
            continue
        service = graph[evaluation.spec.service].resource
        if not isinstance(service, InferenceService):
            continue
        check = checks.setdefault(service.name, ServiceCheck(service))
        check.stored[key] = manifest.service_fingerprint
    return list(checks.values())


def _ask(check: ServiceCheck, timeout_s: float) -> None:
    from runners.fingerprint import FingerprintError, take_fingerprint

    runner = check.service.spec.runner
    assert isinstance(runner, ExternalRunner)
    api_key = os.environ.get(runner.api_key_env) if runner.api_key_env else None
    try:
        check.live = take_fingerprint(check.service, runner.url, api_key, timeout_s=timeout_s)
    except FingerprintError as exc:
        check.error = str(exc)
