"""The launcher: one process per run that starts every runner step and server the run needs.

Starting `python -m runners.<step>` costs an interpreter start and a quarter to half a
second of imports (pydantic models, pyarrow, aiohttp) before the step does any work. The
local backend instead starts one launcher per run, which imports what the run's steps
need once (`PRELOAD_GROUPS`) and forks a child for each Dataset, Evaluation and Method
step: every step is still a process of its own, in a session of its own, with its own
log, so a step that crashes takes nothing else down, and it can be stopped as a tree.
Anything else (inference servers, or a step whose environment changes how Python
starts) is executed afresh.

The launcher also ties the life of every child to the process that started it. It reads
requests from a socket whose other end only that process holds: when it dies, however
it dies (SIGKILL included), the kernel closes its end, the launcher reads end of file,
stops every child it started (SIGTERM, then SIGKILL after a grace period) and removes
the run's temporary directories. Its children receive SIGTERM if the launcher itself
dies (`PR_SET_PDEATHSIG`), and both the launcher and each forked step adopt orphaned
descendants (`PR_SET_CHILD_SUBREAPER`), so a step's grandchildren are stopped when the
step ends.

`python -m runners.launcher --fd N` serves on an inherited socket (when the starting
process cannot fork a copy of itself safely); `serve_launcher` is the same loop for a
forked copy. The protocol is in `_server.py`.
"""

from ._server import FORKED_STEPS, PRELOAD_GROUPS, serve_launcher
from ._tree import DEFAULT_GRACE_S, stop_trees, wait_reaped

__all__ = [
    "DEFAULT_GRACE_S",
    "FORKED_STEPS",
    "PRELOAD_GROUPS",
    "serve_launcher",
    "stop_trees",
    "wait_reaped",
]
