"""Running a notebook method: papermill in a fresh kernel, nbconvert to HTML, scores.

The only module of auditc that imports papermill and nbconvert.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from runners.analysis import (
    EXPORTED_SCORES_FILE,
    INSTANCES_DIR,
    check_scores,
    read_exported_scores,
)
from schemas import (
    CASE_HTML_FILE,
    CASE_NOTEBOOK_FILE,
    SCORES_FILE,
    MethodError,
    ScoresFile,
    ScoreValue,
    Store,
    case_file,
)

from ._config import MethodConfig, MethodResult, node_id_of
from ._reproducible import normalise_notebook, store_root
from ._verdict import contain, verdict_header

__all__ = ["HTML_FILE", "NOTEBOOK_FILE", "render_html", "run_notebook"]

logger = logging.getLogger(__name__)

NOTEBOOK_FILE = CASE_NOTEBOOK_FILE
HTML_FILE = CASE_HTML_FILE
KERNEL_START_TIMEOUT = 120
"""Seconds for a kernel to start; a cold kernel on a busy 2-core machine can take 10+."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_notebook(config: MethodConfig, store: Store, out: Path) -> MethodResult:
    """Execute the method's notebook into `out`, check its scores and store the results.

    `out` is the local output directory the notebook sees as `analysis.output_dir()`;
    every file in it is copied into the node's `_case/`. The executed notebook is kept even when
    the run fails, for debugging (the node is still not complete: the backend writes
    no manifest for a failed step).

    Raises:
        MethodError: the notebook cannot be read or raised, or its scores do not fit
            the method's score specs.
    """
    method = config.method
    executed = out / NOTEBOOK_FILE
    try:
        _execute(config, executed, out)
        normalise_notebook(
            executed,
            source=Path(str(config.notebook_path)),
            stores=sorted({store_root(ref.uri) for ref in config.inputs.values()}),
            output_dir=str(out),
        )
        scores = check_scores(method.name, list(method.spec.scores), read_exported_scores(out))
        _check_instances(method.name, out, scores)
        title = method.documentation.title if method.documentation else None
        page = render_html(executed, title or method.name)
        (out / HTML_FILE).write_text(contain(page, verdict_header(config, scores)), "utf-8")
        result = ScoresFile(method=method.name, id=node_id_of(config.output_uri), scores=scores)
        (out / SCORES_FILE).write_text(result.model_dump_json(indent=2), "utf-8")
    except MethodError:
        if executed.exists():
            store.write_output(executed.read_bytes(), "", case_file(NOTEBOOK_FILE))
            logger.info(
                "kept the executed notebook for debugging: %s",
                store.uri_of(case_file(NOTEBOOK_FILE)),
            )
        raise
    _upload(store, out)
    return MethodResult(rows=None, scores=scores)


def _parameters(config: MethodConfig, out: Path) -> dict[str, Any]:
    parameters = dict(config.method.spec.parameters)
    bad = [name for name in parameters if not name.isidentifier() or name.startswith("auditc_")]
    if bad:
        raise MethodError(
            f"Method/{config.method.name}: parameter {bad[0]!r} cannot be a notebook variable "
            "(a Python identifier not starting with 'auditc_' is needed)"
        )
    parameters["auditc_inputs"] = {name: ref.uri for name, ref in config.inputs.items()}
    parameters["auditc_output_dir"] = str(out)
    return parameters


def _execute(config: MethodConfig, executed: Path, out: Path) -> None:
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillException, PapermillExecutionError

    where = f"Method/{config.method.name}: notebook {Path(str(config.notebook_path)).name}"
    quiet = _ReservedParameterFilter()
    logging.getLogger("papermill").addFilter(quiet)
    try:
        papermill.execute_notebook(
            input_path=str(config.notebook_path),
            output_path=str(executed),
            parameters=_parameters(config, out),
            kernel_name=config.kernel_name,
            language="python",
            cwd=str(out),
            progress_bar=False,
            log_output=True,
            start_timeout=KERNEL_START_TIMEOUT,
            execution_timeout=int(config.method.spec.timeout),
            **_kernel_options(),
        )
    except PapermillExecutionError as exc:
        logger.error("%s failed:\n%s", where, _ANSI.sub("", str(exc)).strip())
        first_line = next((ln for ln in exc.source.splitlines() if ln.strip()), "")[:60]
        raise MethodError(
            f"{where} failed in cell {exc.cell_index} (`{first_line}`): {exc.ename}: "
            f"{_ANSI.sub('', exc.evalue)}"
        ) from exc
    except NoSuchKernel as exc:
        raise MethodError(f"{where}: no Jupyter kernel named {config.kernel_name!r}") from exc
    except (CellTimeoutError, DeadKernelError) as exc:
        raise MethodError(f"{where}: {type(exc).__name__}: {exc}") from exc
    except (PapermillException, OSError, ValueError) as exc:
        # unreadable or malformed notebooks, and kernels that fail to start
        raise MethodError(f"{where} could not run: {type(exc).__name__}: {exc}") from exc
    finally:
        logging.getLogger("papermill").removeFilter(quiet)


class _ReservedParameterFilter(logging.Filter):
    """Drops papermill's warning that `auditc_*` parameters are not in the parameters cell.

    Every notebook receives them; a notebook need not declare what it does not use.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter: auditc_")


def _kernel_options() -> dict[str, Any]:
    """Papermill options that keep the kernel's channel private and its log quiet.

    With CurveZMQ (pyzmq built with libsodium) the kernel manager provisions keys, which
    also removes ipykernel's "running over TCP without encryption" warning; without it
    the kernel application is asked to log errors only, which hides that warning.
    """
    import zmq
    from traitlets.config import Config

    if zmq.has("curve"):
        config = Config()
        config.KernelManager.transport_encryption = "auto"
        return {"config": config}
    return {"extra_arguments": ["--IPKernelApp.log_level=ERROR"]}


def _check_instances(method: str, out: Path, scores: list[ScoreValue]) -> None:
    directory = out / INSTANCES_DIR
    if not directory.exists():
        return
    exported = {score.name for score in scores}
    for path in directory.iterdir():
        if path.suffix != ".parquet" or path.stem not in exported:
            raise MethodError(
                f"Method/{method}: {INSTANCES_DIR}/{path.name} belongs to no exported score "
                "(write per-instance values through analysis.score(..., instances=…))"
            )


OFFLINE_TEMPLATE = Path(__file__).parent / "templates" / "offline.html.j2"
"""nbconvert's lab template without the scripts it loads from a CDN."""


def render_html(notebook: Path, title: str) -> str:
    """The executed notebook as HTML without code: outputs and Markdown only.

    The page is inert only once `contain` has added its Content-Security-Policy.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_file=str(OFFLINE_TEMPLATE),
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    node = nbformat.read(notebook, as_version=4)
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": title}})
    return str(body)


def _upload(store: Store, out: Path) -> None:
    """Copy every file of the output directory into the node's `_case/`, except the runner's
    scratch (out of the data path: readers of the node's Parquet never see them)."""
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if not path.is_file() or relative == EXPORTED_SCORES_FILE:
            continue
        if any(part.startswith(".") for part in Path(relative).parts):
            continue
        store.write_output(path.read_bytes(), "", case_file(relative))
