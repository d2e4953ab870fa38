"""The method runner step: `run_method(config)` for both kinds of method."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runners.analysis import ANALYSIS_CONFIG_ENV, AnalysisConfig
from schemas import CASE_DIR, DIGESTS_DIR, Store

from .._bytecode import private_bytecode_cache
from ._config import MethodConfig, MethodResult, node_id_of
from ._notebook import run_notebook
from ._outputs import write_scores_part
from ._python import run_function

__all__ = ["run_method"]

logger = logging.getLogger(__name__)


def run_method(config: MethodConfig) -> MethodResult:
    """Run one method and write its outputs into `config.output_uri`.

    A Python function's output becomes a Measurement (`part-*.parquet`); a notebook's
    becomes a SafetyCase: its scores as a table (`part-00000.parquet`) and, in `_case/`,
    `notebook.ipynb`, `index.html`, `scores.json`, `instances/<score>.parquet` and any
    file the notebook wrote to its output dir. Outputs of an earlier attempt are removed
    first; `_logs/`, `_runs/` and the manifest are not touched (the backend owns them).

    Example:
        >>> result = run_method(MethodConfig.model_validate_json(text))  # doctest: +SKIP
        >>> result.scores[0].formatted()                                  # doctest: +SKIP

    Raises:
        MethodError: the method failed or its outputs do not fit its spec.
        StoreError: an input or the output location cannot be read or written.
    """
    started = time.monotonic()
    private_bytecode_cache(config.python_paths)  # inherited by a notebook's kernel too
    store = Store.open(config.output_uri)
    _clear_outputs(store)
    # The pid in the name lets a later run remove it if this process is killed.
    with tempfile.TemporaryDirectory(prefix=f"auditc-method-{os.getpid()}-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        with _environment(config, Path(tmp), out):
            if config.notebook_path is not None:
                result = run_notebook(config, store, out)
                write_scores_part(store, result.scores)
            else:
                result = run_function(config, store)
    logger.info("Method/%s completed in %.1fs", config.method.name, time.monotonic() - started)
    return result


def _clear_outputs(store: Store) -> None:
    for relative in store.list_files():
        if "/" not in relative and relative.startswith("part-") and relative.endswith(".parquet"):
            store.fs.delete_file(store.path(relative))
    store.delete_dir(CASE_DIR)
    store.delete_dir(DIGESTS_DIR)


@contextmanager
def _environment(config: MethodConfig, tmp: Path, out: Path) -> Iterator[None]:
    """Module dirs on sys.path and PYTHONPATH, and the analysis config in the environment.

    The kernel inherits the environment; PYTHONPATH carries this process's sys.path too,
    so `runners` (and whatever made it importable here) is importable in the kernel.
    Everything is restored afterwards, so `run_method` can be called in-process.
    """
    analysis = AnalysisConfig(
        method=config.method.name,
        node_id=node_id_of(config.output_uri),
        output_kind=config.method.spec.output.kind,
        inputs=config.inputs,
        parameters=config.method.spec.parameters,
        scores=config.method.spec.scores,
        output_dir=str(out),
    )
    config_path = tmp / "analysis.json"
    config_path.write_text(analysis.model_dump_json(indent=2), "utf-8")
    paths = list(dict.fromkeys([*config.python_paths, *(p for p in sys.path if p)]))
    saved_env = {
        k: os.environ.get(k) for k in (ANALYSIS_CONFIG_ENV, "PYTHONPATH", "JUPYTER_PLATFORM_DIRS")
    }
    saved_path = list(sys.path)
    os.environ[ANALYSIS_CONFIG_ENV] = str(config_path)
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    # Opt in to platformdirs paths now: silences jupyter_core's migration warning.
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    sys.path[:0] = [p for p in config.python_paths if p not in sys.path]
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
