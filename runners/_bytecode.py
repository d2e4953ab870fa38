"""Module code runs from its hashed source, never from bytecode that came with it.

Node ids hash a Module's source files, not `__pycache__/*.pyc`; but Python reads a
`.pyc` next to the source when one is there, and an "unchecked-hash" `.pyc` is used
whatever the source says. A committed one would change results under the same id.
So every runner reads and writes bytecode only under a private cache outside the
project (`PYTHONPYCACHEPREFIX`): caches in the source tree are never read, and what
the private cache holds was compiled by Python itself from the source it checks.
(Sourceless `.pyc` files in a Module directory, which Python imports without any
source, are refused by `auditc validate`.)

The runner entry points call `private_bytecode_cache()` first; backends set the same
variable for the processes they start, so children such as notebook kernels inherit
it. The runner image compiles its packages into `RUNNER_IMAGE_PYCACHE` at build time.
Bytecode Python compiled into the private cache is checked against the source's time
and size only, so the cache of a Module's own files is dropped before the Module is
imported: its code is always compiled from the source whose hash is in the id.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "PYCACHE_ENV",
    "RUNNER_IMAGE_PYCACHE",
    "default_bytecode_cache",
    "private_bytecode_cache",
]

PYCACHE_ENV = "PYTHONPYCACHEPREFIX"
RUNNER_IMAGE_PYCACHE = "/opt/auditc/pycache"
"""Where the runner image keeps its bytecode, compiled at build (runners/images/Dockerfile)."""


def default_bytecode_cache() -> Path:
    """`$XDG_CACHE_HOME/auditc/pycache` (by default `~/.cache/auditc/pycache`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "auditc" / "pycache"


def private_bytecode_cache(module_dirs: Iterable[str | Path] = ()) -> str:
    """Make this interpreter and the processes it starts use a private bytecode cache.

    An existing `PYTHONPYCACHEPREFIX` is kept (the runner image sets one); otherwise
    `default_bytecode_cache()` is used. Writing bytecode is turned back on: it only
    goes to the private cache (without it, every runner would compile its libraries
    again at each start). What the cache holds for `module_dirs` is removed, so Module
    code is compiled from the source just hashed, whatever the file times say.

    Returns:
        The cache directory.
    """
    prefix = os.environ.get(PYCACHE_ENV) or str(default_bytecode_cache())
    os.environ[PYCACHE_ENV] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    for directory in module_dirs:
        # The cache mirrors absolute source paths under the prefix.
        cached = Path(prefix) / Path(directory).resolve().relative_to("/")
        shutil.rmtree(cached, ignore_errors=True)
    return prefix
