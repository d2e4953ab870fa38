"""An Evaluation in the Every Eval Ever schema (evaleval/every_eval_ever, version 0.3.0).

The aggregate record (`eval.schema.json`) has one `evaluation_results` entry per score
of each SafetyCase computed from the Evaluation; the instance-level records
(`instance_level_eval.schema.json`, one JSON line each) have one record per dataset row
and per score that stored per-instance values (of a SafetyCase whose only upstream
Evaluation is this one: see `ExportTarget.aligned`).

Mapping: `evaluation_name` ← the Evaluation; `evaluation_result_id` ←
`<Method>/<score>`; `metric_config` ← the score spec (valence → `lower_is_better`,
minimum/maximum, unit); `score_details.uncertainty` ← the standard error of the
per-instance values; `model_info.id` ← `auditc/<InferenceService>` and the model
revision; provenance (node ids, input hashes, model revision, git commit) ←
`eval_library.additional_details` and `score_details.details`. An instance is
`is_correct` when its value is on the good side of the score's valence: non-zero for
a positive score, zero for a negative one (a neutral score counts non-zero as correct).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from typing import Any, Literal

from compiler.report import read_instances
from schemas import ERROR_COLUMN, INDEX_COLUMN, REPLICATION_COLUMN, ScoreValue

from ._inspect import TEXT_KEYS, evaluation_tables
from ._provenance import flat_provenance
from ._select import ExportTarget

__all__ = ["EEE_SCHEMA_VERSION", "Relationship", "eee_records", "record_uuid"]

EEE_SCHEMA_VERSION = "0.3.0"
Relationship = Literal["first_party", "third_party", "collaborative", "other"]


def record_uuid(node_id: str) -> str:
    """A version-4-shaped UUID derived from the node id: the same run gets the same name."""
    return str(uuid.UUID(bytes=hashlib.sha256(node_id.encode()).digest()[:16], version=4))


def _text(row: dict[str, Any]) -> str:
    for key in TEXT_KEYS:
        if isinstance(row.get(key), str):
            return str(row[key])
    return json.dumps(row, ensure_ascii=False, default=str, sort_keys=True)


def _uncertainty(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if n < 2:
        return {"num_samples": n}
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {
        "standard_error": {"value": sd / math.sqrt(n), "method": "analytic"},
        "standard_deviation": sd,
        "num_samples": n,
    }


def _metric_config(method: str, score: ScoreValue) -> dict[str, Any]:
    config: dict[str, Any] = {
        "evaluation_description": score.summary or score.title or score.name,
        "metric_id": f"auditc.{method}.{score.name}",
        "metric_name": score.title or score.name,
        "lower_is_better": score.valence == "negative",
    }
    if score.unit:
        config["metric_unit"] = score.unit
    if score.minimum is not None and score.maximum is not None:
        config.update(score_type="continuous", min_score=score.minimum, max_score=score.maximum)
    gate = {"gate_min": score.gate_min, "gate_max": score.gate_max}
    details = {k: str(v) for k, v in gate.items() if v is not None}
    if details:
        config["additional_details"] = details
    return config


def _is_correct(score: ScoreValue, value: float) -> bool:
    return value == 0 if score.valence == "negative" else value != 0


def eee_records(
    target: ExportTarget,
    *,
    organization: str = "unspecified",
    relationship: Relationship = "third_party",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The aggregate record and the instance-level records of the target Evaluation.

    Args:
        target: an Evaluation with what was computed from it.
        organization: `source_metadata.source_organization_name`: who ran the audit.
        relationship: `source_metadata.evaluator_relationship` to the model's developer.

    Raises:
        UsageError: the node is not an Evaluation.
        StoreError: its data cannot be read.
    """
    outputs, dataset = evaluation_tables(target)
    root = target.root
    service = next(
        (k.split("/", 1)[1] for k in root.upstream if k.startswith("InferenceService/")), "unknown"
    )
    model_id = f"auditc/{service}"
    evaluation_id = f"{root.name}/{model_id}/{int(root.finished_at.timestamp())}"
    rows = {r.pop(INDEX_COLUMN): r for r in dataset.to_pylist()} if dataset is not None else {}
    answers: dict[int, list[str]] = {}
    errors: dict[int, str] = {}
    for row in outputs.sort_by([(REPLICATION_COLUMN, "ascending")]).to_pylist():
        index, error = row.pop(INDEX_COLUMN), row.pop(ERROR_COLUMN, None)
        row.pop(REPLICATION_COLUMN)
        row.pop("_error_type_", None)
        if error is not None:
            errors[index] = error
        else:
            answers.setdefault(index, []).append(_text(row))
    provenance = flat_provenance(target.store, root)
    results, instances = [], []
    for case in target.cases:
        for score in case.scores.scores:
            result_id = f"{case.method}/{score.name}"
            aligned = case.id in target.aligned
            per_instance = read_instances(target.store, case, score.name) if aligned else None
            values = (
                dict(
                    zip(
                        per_instance[INDEX_COLUMN].to_pylist(),
                        per_instance["value"].to_pylist(),
                        strict=True,
                    )
                )
                if per_instance is not None
                else {}
            )
            details = {"formatted": score.formatted(), "safety_case_id": case.id}
            if score.text:
                details["text"] = score.text
            if score.passed() is not None:
                details["gate_passed"] = str(score.passed()).lower()
            result: dict[str, Any] = {
                "evaluation_result_id": result_id,
                "evaluation_name": root.name,
                "source_data": _source_data(target, len(rows) or None),
                "evaluation_timestamp": root.finished_at.isoformat(timespec="seconds"),
                "metric_config": _metric_config(case.method, score),
                "score_details": {"score": score.value, "details": details},
            }
            if values:
                result["score_details"]["uncertainty"] = _uncertainty(list(values.values()))
            results.append(result)
            for index, value in sorted(values.items()):
                data = rows.get(index, {})
                raw = _text(data) if data else str(index)
                instance: dict[str, Any] = {
                    "schema_version": EEE_SCHEMA_VERSION,
                    "evaluation_id": evaluation_id,
                    "model_id": model_id,
                    "evaluation_name": root.name,
                    "evaluation_result_id": result_id,
                    "sample_id": str(index),
                    "sample_hash": hashlib.sha256(raw.encode()).hexdigest(),
                    "interaction_type": "single_turn",
                    "input": {"raw": raw, "reference": []},
                    "output": {"raw": answers.get(index, [])},
                    "answer_attribution": [
                        {
                            "turn_idx": 0,
                            "source": "output.raw",
                            "extracted_value": (answers.get(index) or [""])[0],
                            "extraction_method": f"auditc/{case.method}",
                            "is_terminal": True,
                        }
                    ],
                    "evaluation": {"score": value, "is_correct": _is_correct(score, value)},
                    "error": errors.get(index),
                    "metadata": {k: str(v) for k, v in data.items()},
                }
                instances.append(instance)
    aggregate: dict[str, Any] = {
        "schema_version": EEE_SCHEMA_VERSION,
        "evaluation_id": evaluation_id,
        "evaluation_timestamp": root.finished_at.isoformat(timespec="seconds"),
        "retrieved_timestamp": str(int(root.finished_at.timestamp())),
        "source_metadata": {
            "source_name": "auditc",
            "source_type": "evaluation_run",
            "source_organization_name": organization,
            "evaluator_relationship": relationship,
        },
        "eval_library": {
            "name": "auditc",
            "version": root.auditc_version,
            "additional_details": provenance,
        },
        "model_info": _model_info(root, service),
        "evaluation_results": results,
    }
    return aggregate, instances


def _model_info(root: Any, service: str) -> dict[str, Any]:
    details = {"deployment_type": "unknown", "model_availability": "unknown"}
    model = next((k for k in root.upstream if k.startswith("Model/")), None)
    if model is not None:
        details["auditc_model"] = f"{model}@{root.upstream[model]}"
    if root.model_revision:
        details["model_revision"] = root.model_revision
    details["auditc_service"] = (
        f"InferenceService/{service}@{root.upstream.get(f'InferenceService/{service}', '')}"
    )
    return {"name": service, "id": f"auditc/{service}", "additional_details": details}


def _source_data(target: ExportTarget, rows: int | None) -> dict[str, Any]:
    name = next((k for k in target.root.upstream if k.startswith("Dataset/")), "Dataset/unknown")
    details = {"auditc_dataset": f"{name}@{target.root.upstream.get(name, '')}"}
    if rows is not None:
        details["rows"] = str(rows)
    return {
        "dataset_name": name.split("/", 1)[1],
        "source_type": "other",
        "additional_details": details,
    }
