"""The helper API that notebooks and Python-function methods call during a method run.

Example (a notebook cell):
    >>> from runners import analysis                        # doctest: +SKIP
    >>> fpr = analysis.input("fpr")                         # doctest: +SKIP
    >>> analysis.score("max_fpr_gap", 0.12, text="…")      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas import MethodError, ScoreValue, Store

from ._config import AnalysisConfig, load_config
from ._intervals import DEFAULT_CONFIDENCE, given_interval, score_interval
from ._scores import check_reproduces, check_score, instance_arrays, instances_table

if TYPE_CHECKING:
    import pyarrow.dataset as pads

__all__ = [
    "EXPORTED_SCORES_FILE",
    "INSTANCES_DIR",
    "config",
    "input",
    "input_dataset",
    "input_uri",
    "output_dir",
    "parameter",
    "read_exported_scores",
    "score",
]

EXPORTED_SCORES_FILE = ".auditc-scores.jsonl"
"""Scores as the notebook exported them, one JSON line each; the runner checks them."""
INSTANCES_DIR = "instances"

_MISSING: Any = object()


def config() -> AnalysisConfig:
    """The whole config of the current run (inputs, parameters, score specs)."""
    return load_config()


def input_uri(name: str) -> str:
    """The store URI of input `name`.

    Raises:
        MethodError: the method has no input of that name.
    """
    cfg = load_config()
    ref = cfg.inputs.get(name)
    if ref is None:
        raise MethodError(
            f"Method/{cfg.method}: no input named {name!r} "
            f"(inputs: {', '.join(sorted(cfg.inputs)) or 'none'})"
        )
    return ref.uri


def input_dataset(name: str) -> pads.Dataset:
    """Input `name` as a lazy pyarrow dataset (for data too large to load at once)."""
    return Store.open(input_uri(name), create=False).open_dataset("")


def input(name: str) -> pa.Table:  # noqa: A001 - the documented name of the API
    """Input `name` (a Dataset, Evaluation or Measurement) read whole as a pyarrow Table.

    Raises:
        MethodError: no such input.
        StoreError: its data cannot be read.
    """
    table: pa.Table = input_dataset(name).to_table()
    return table


def parameter(name: str, default: Any = _MISSING) -> Any:
    """The value of method parameter `name` (from the Method's `spec.parameters`).

    Raises:
        MethodError: the method has no such parameter and no default was given.
    """
    cfg = load_config()
    if name in cfg.parameters:
        return cfg.parameters[name]
    if default is not _MISSING:
        return default
    raise MethodError(
        f"Method/{cfg.method}: no parameter named {name!r} "
        f"(parameters: {', '.join(sorted(cfg.parameters)) or 'none'})"
    )


def output_dir() -> Path:
    """A local directory for files the run keeps with its outputs (figures, extra tables)."""
    return Path(load_config().output_dir)


def score(
    name: str,
    value: Any,
    text: str | None = None,
    instances: Any = None,
    interval: Any = None,
) -> ScoreValue:
    """Export a score of this SafetyCase, checked against its spec at once.

    Args:
        name: a score declared in the Method's `spec.scores`.
        value: a finite real number inside the spec's [minimum, maximum].
        text: a sentence about the value, shown with it in reports.
        instances: optional per-instance values the score aggregates (see the spec's
            `aggregate`; default: their mean), as a mapping `{_index_: value}` or a table
            with `_index_`, `value` and the aggregate's group/denominator columns. They
            must reproduce `value`; from them the score's confidence interval is
            computed, and `auditc diff` compares two runs instance by instance.
        interval: optional `(low, high)` the method computed itself, at the confidence
            of the score's gate (default 95 %); used instead of one from `instances`.

    Returns:
        The score as it will be stored (spec fields and interval included);
        `score_card` renders it.

    Raises:
        MethodError: the score is unknown, already exported, not finite, out of range,
            not reproduced by its instances, without the interval its confidence gate
            needs, or this method is not a SafetyCase.
    """
    cfg = load_config()
    if cfg.output_kind != "SafetyCase":
        raise MethodError(f"Method/{cfg.method}: only SafetyCase methods export scores")
    out = Path(cfg.output_dir)
    if any(s.name == name for s in read_exported_scores(out)):
        raise MethodError(f"Method/{cfg.method}: score {name!r} was already exported")
    stored = check_score(cfg.method, cfg.scores, name, value, text)
    table = None
    confidence = stored.gate_confidence or DEFAULT_CONFIDENCE
    found = None
    if interval is not None:
        found = given_interval(cfg.method, name, stored.value, interval, confidence)
    if instances is not None:
        table = instances_table(cfg.method, name, instances, stored.aggregate)
        arrays = instance_arrays(table, stored.aggregate)
        check_reproduces(cfg.method, name, stored.value, arrays)
        found = found or score_interval(arrays, confidence)
    if stored.gate_confidence is not None and found is None:
        raise MethodError(
            f"Method/{cfg.method}: score {name!r} has a gate with confidence "
            f"{stored.gate_confidence:g}, which needs an interval: pass instances=… "
            "(at least two) or interval=(low, high)"
        )
    stored = stored.model_copy(update={"interval": found})
    if table is not None:
        _write_instances(out, name, table)
    with (out / EXPORTED_SCORES_FILE).open("a", encoding="utf-8") as f:
        f.write(stored.model_dump_json() + "\n")
    return stored


def _write_instances(out: Path, name: str, table: pa.Table) -> None:
    target = out / INSTANCES_DIR / f"{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)


def read_exported_scores(directory: Path) -> list[ScoreValue]:
    """The scores exported so far into an output directory, in export order.

    Raises:
        MethodError: the file was altered and no longer holds valid scores.
    """
    path = directory / EXPORTED_SCORES_FILE
    if not path.exists():
        return []
    scores: list[ScoreValue] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            scores.append(ScoreValue.model_validate(json.loads(line)))
        except ValueError as exc:
            raise MethodError(f"{path}:{number}: not a valid exported score: {exc}") from exc
    return scores
