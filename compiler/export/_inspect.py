"""An Evaluation as an Inspect AI EvalLog (the JSON log format, `log_format="json"`).

Mapping (Inspect field ← auditc):

- `eval.task` ← the Evaluation's name; `eval_id`, `run_id`, `task_id` ← its node id;
  `eval.model` ← `auditc/<InferenceService>`; `eval.dataset` ← the Dataset (name, store
  URI, rows, `_index_` values); `eval.config.epochs` ← `replications`;
  `eval.revision` ← the git commit; `eval.metadata.auditc` ← provenance (node ids,
  input file hashes, model revision, image) of the Evaluation and of every Measurement
  and SafetyCase exported with it.
- one sample per output row: `id` ← `_index_`, `epoch` ← `_replication_ + 1`, `input` ←
  the dataset row (its one text column, else the row as JSON), `output.completion` ←
  the output columns (the one text column, else JSON), `error` ← `_error_`,
  `metadata` ← the dataset row and output columns.
- `sample.scores` ← per-instance values: a SafetyCase score's `_case/instances/<score>.parquet`
  (`<method>/<score>`) and the numeric columns of instance-level Measurements
  (`<method>/<column>`), of the nodes whose only upstream Evaluation is this one (the
  `_index_` of a node reading several Evaluations names rows of more than one dataset).
- `results.scores` ← every SafetyCase score (its value as the metric `value`, with the
  gate and valence in `metadata`); `results.metadata.measurements` ← dataset-level
  Measurement tables.

Written from plain JSON: auditc needs no inspect_ai to export; the tests read the file
with `inspect_ai.log.read_eval_log`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from compiler.report import read_instances, read_table
from schemas import (
    ERROR_COLUMN,
    ERROR_TYPE_COLUMN,
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    Manifest,
    UsageError,
    node_path,
)

from ._provenance import node_provenance
from ._select import ExportTarget

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["INSPECT_LOG_VERSION", "evaluation_tables", "inspect_log"]

INSPECT_LOG_VERSION = 2
"""The EvalLog `version` written (Inspect AI's current log format)."""
MAX_MEASUREMENT_ROWS = 1000
"""Dataset-level Measurement tables larger than this are referenced, not embedded."""


def _upstream_name(manifest: Manifest, kind: str) -> str | None:
    return next((k.split("/", 1)[1] for k in manifest.upstream if k.startswith(f"{kind}/")), None)


def _model_name(root: Manifest, outputs: pa.Table) -> str:
    """Who answered: `auditc/<service>`; for an Evaluation imported from a log, the one
    model its `model` column names (the model Inspect ran), else `imported/<name>`."""
    service = _upstream_name(root, "InferenceService")
    if service is not None:
        return f"auditc/{service}"
    if "model" in outputs.column_names:
        models = {m for m in outputs["model"].to_pylist() if isinstance(m, str) and m}
        if len(models) == 1:
            return models.pop()
    return f"imported/{root.name}"


def evaluation_tables(target: ExportTarget) -> tuple[pa.Table, pa.Table | None]:
    """The Evaluation's output rows and its Dataset's rows (None if the store lacks them).

    Raises:
        UsageError: the node is not an Evaluation.
        StoreError: its data cannot be read.
    """
    root = target.root
    if root.kind != "Evaluation":
        evaluations = sorted(
            {k.split("/", 1)[1] for k in root.upstream if k.startswith("Evaluation/")}
        )
        hint = f"; its evaluations: {', '.join(evaluations)}" if evaluations else ""
        raise UsageError(
            f"this format exports an Evaluation, and {root.kind}/{root.name} is not{hint}"
        )
    outputs = read_table(target.store, root)
    dataset_key = next((k for k in root.upstream if k.startswith("Dataset/")), None)
    dataset = None
    if dataset_key is not None:
        from compiler.report import NodeRef

        kind, _, name = dataset_key.partition("/")
        manifest = target.index.get(NodeRef(kind, name, root.upstream[dataset_key]))
        if manifest is not None and manifest.status == "complete":
            dataset = read_table(target.store, manifest)
    return outputs, dataset


TEXT_KEYS = ("input", "prompt", "text", "question", "completion", "answer", "output")
"""Columns taken as a row's text when present, in this order."""


def _as_text(row: dict[str, Any]) -> str:
    """A row as one string: a text column (TEXT_KEYS, else the only one), else compact JSON."""
    for key in TEXT_KEYS:
        if isinstance(row.get(key), str):
            return str(row[key])
    texts = [v for v in row.values() if isinstance(v, str)]
    if len(texts) == 1 and len(row) == 1:
        return texts[0]
    return json.dumps(row, ensure_ascii=False, default=str, sort_keys=True)


def _instance_scores(target: ExportTarget) -> dict[str, dict[int, float]]:
    """`<method>/<score or column>` → {_index_: value} from SafetyCases and Measurements."""
    scores: dict[str, dict[int, float]] = {}
    for case in target.cases:
        if case.id not in target.aligned:
            continue
        for score in case.scores.scores:
            table = read_instances(target.store, case, score.name)
            if table is not None:
                scores[f"{case.method}/{score.name}"] = dict(
                    zip(table[INDEX_COLUMN].to_pylist(), table["value"].to_pylist(), strict=True)
                )
    for manifest in target.measurements:
        if manifest.id not in target.aligned:
            continue
        table = read_table(target.store, manifest)
        if INDEX_COLUMN not in table.column_names:
            continue
        index = table[INDEX_COLUMN].to_pylist()
        for name in table.column_names:
            column = table[name]
            if name in (INDEX_COLUMN, REPLICATION_COLUMN) or not _is_number(column.type):
                continue
            values = column.to_pylist()
            scores[f"{manifest.name}/{name}"] = {
                i: float(v) for i, v in zip(index, values, strict=True) if v is not None
            }
    return scores


def _is_number(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_)
    )


def _sample(
    row: dict[str, Any],
    data: dict[str, Any] | None,
    model: str,
    scores: dict[str, dict[int, float]],
    run_id: str,
) -> dict[str, Any]:
    index, replication = row.pop(INDEX_COLUMN), row.pop(REPLICATION_COLUMN)
    error, error_type = row.pop(ERROR_COLUMN, None), row.pop(ERROR_TYPE_COLUMN, None)
    completion = "" if error is not None else _as_text(row)
    sample: dict[str, Any] = {
        "id": index,
        "epoch": replication + 1,
        "input": _as_text(data) if data else "",
        "target": "",
        "messages": [],
        "output": {
            "model": model,
            "choices": [
                {
                    "message": {"role": "assistant", "content": completion, "source": "generate"},
                    "stop_reason": "stop",
                }
            ]
            if error is None
            else [],
            "completion": completion,
        },
        "scores": {
            name: {"value": values[index]} for name, values in scores.items() if index in values
        },
        "metadata": {"dataset": data or {}, "output": row},
        # What inspect_ai itself writes for every sample; Inspect's viewer waits for them.
        "store": {},
        "events": [],
        "model_usage": {},
        "attachments": {},
        "uuid": f"{run_id}-{index}-{replication}",
        # Rows are not timed one by one (the evaluation's time is in `stats`); the viewer
        # needs numbers here.
        "total_time": 0.0,
        "working_time": 0.0,
    }
    if error is not None:
        sample["error"] = {
            "message": f"{error_type or 'error'}: {error}",
            "traceback": "",
            "traceback_ansi": "",
        }
    return sample


def _results(target: ExportTarget, total: int, completed: int) -> dict[str, Any]:
    scores = []
    for case in target.cases:
        for score in case.scores.scores:
            scores.append(
                {
                    "name": f"{case.method}/{score.name}",  # as _score_names
                    "scorer": case.method,
                    "params": {},
                    "metrics": {
                        "value": {"name": "value", "value": score.value, "params": {}},
                    },
                    "metadata": {
                        "title": score.title,
                        "valence": score.valence,
                        "primary": score.primary,
                        "formatted": score.formatted(),
                        "gate_min": score.gate_min,
                        "gate_max": score.gate_max,
                        "passed": score.passed(),
                        "safety_case": case.id,
                    },
                }
            )
    measurements: dict[str, Any] = {}
    for manifest in target.measurements:
        table = read_table(target.store, manifest)
        if INDEX_COLUMN in table.column_names:
            continue  # instance-level: its values are in the samples' scores
        measurements[manifest.name] = (
            table.to_pylist()
            if table.num_rows <= MAX_MEASUREMENT_ROWS
            else f"{table.num_rows} rows"
        )
    return {
        "total_samples": total,
        "completed_samples": completed,
        "scores": scores,
        "metadata": {"measurements": measurements},
    }


def _score_names(target: ExportTarget) -> list[str]:
    """Every `<method>/<score>` of the safety cases, as `results.scores` names them."""
    return [f"{case.method}/{score.name}" for case in target.cases for score in case.scores.scores]


def _dataset_uri(target: ExportTarget, name: str | None) -> str | None:
    node_id = target.root.upstream.get(f"Dataset/{name}")
    return target.store.uri_of(node_path("Dataset", name, node_id)) if name and node_id else None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def inspect_log(target: ExportTarget) -> dict[str, Any]:
    """The EvalLog of the target Evaluation, as a JSON-ready mapping.

    Raises:
        UsageError: the node is not an Evaluation.
        StoreError: its data cannot be read.
    """
    outputs, dataset = evaluation_tables(target)
    root = target.root
    dataset_name = _upstream_name(root, "Dataset")
    model = _model_name(root, outputs)
    rows_by_index = (
        {r.pop(INDEX_COLUMN): r for r in dataset.to_pylist()} if dataset is not None else {}
    )
    scores = _instance_scores(target)
    samples = [
        _sample(row, rows_by_index.get(row[INDEX_COLUMN]), model, scores, root.id)
        for row in outputs.sort_by(
            [(REPLICATION_COLUMN, "ascending"), (INDEX_COLUMN, "ascending")]
        ).to_pylist()
    ]
    completed = sum(1 for s in samples if "error" not in s)
    spec = root.spec.get("spec", root.spec)
    provenance = {
        "evaluation": node_provenance(target.store, root),
        "measurements": [node_provenance(target.store, m) for m in target.measurements],
        "safety_cases": [node_provenance(target.store, c.manifest) for c in target.cases],
    }
    log: dict[str, Any] = {
        "version": INSPECT_LOG_VERSION,
        "status": "success" if root.status == "complete" else "error",
        "eval": {
            "eval_id": root.id,
            "run_id": root.id,
            "created": _iso(root.started_at),
            "task": root.name,
            "task_id": root.id,
            "task_version": 0,
            "task_attribs": {},
            "task_args": {},
            "dataset": {
                "name": dataset_name,
                "location": _dataset_uri(target, dataset_name),
                "samples": len(rows_by_index) or outputs.num_rows,
                "sample_ids": sorted(rows_by_index)
                or sorted(set(outputs[INDEX_COLUMN].to_pylist())),
                "shuffled": False,
            },
            "model": model,
            "model_generate_config": {},
            "model_args": {},
            "config": {"epochs": int(spec.get("replications", 1))},
            "packages": {"auditc": root.auditc_version},
            "metadata": {"auditc": provenance},
            "scorers": [
                {"name": name, "options": {}, "metrics": [{"name": "value", "options": {}}]}
                for name in _score_names(target)
            ],
        },
        "plan": {
            "name": "plan",
            "steps": [{"solver": "auditc/evaluation", "params": spec}],
            "config": {},
        },
        "results": _results(target, len(samples), completed),
        "stats": {
            "started_at": _iso(root.started_at),
            "completed_at": _iso(root.finished_at),
            "model_usage": {},
        },
        "samples": samples,
    }
    if root.git_commit:
        log["eval"]["revision"] = {"type": "git", "origin": "", "commit": root.git_commit}
    if root.status != "complete":
        log["error"] = {"message": root.error or "failed", "traceback": "", "traceback_ansi": ""}
    return log
