"""The local backend: run an audit graph on this machine.

Runners are subprocesses (`python -m runners.<step>`), inference services are
server processes on 127.0.0.1, and every node writes its outputs and, last, its
`_manifest.json` to `<store>/<kind>/<name>/<id>/`.

Example:
    >>> from compiler import load_project, resolve_graph            # doctest: +SKIP
    >>> from compiler.backends.local import run_local               # doctest: +SKIP
    >>> graph = resolve_graph(load_project(root, [root / "audits"]))  # doctest: +SKIP
    >>> result = run_local(graph, root / ".auditc")                 # doctest: +SKIP
    >>> result.ok, [n.report for n in result.nodes if n.report]     # doctest: +SKIP
"""

from ._lock import store_writer_lock
from ._processes import ChildProcess
from ._results import EventHandler, NodeOutcome, NodeResult, RunEvent, RunResult
from ._scheduler import DEFAULT_JOBS, run_local
from ._services import LOCAL_RUNNERS, RunningService, infer_one, start_service

__all__ = [
    "DEFAULT_JOBS",
    "ChildProcess",
    "LOCAL_RUNNERS",
    "EventHandler",
    "NodeOutcome",
    "NodeResult",
    "RunEvent",
    "RunResult",
    "RunningService",
    "infer_one",
    "run_local",
    "start_service",
    "store_writer_lock",
]
