"""A synthetic store of several systems and safety cases, for the report tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from schemas import Manifest, ScoreAggregate, ScoresFile, ScoreValue, Store, node_path

GROUPS = ("women", "men", "muslims", "jews", "gay people", "immigrants")
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SystemSpec:
    """A synthetic system under test: how often its filter errs."""

    service: str
    model: str
    revision: str | None
    false_positive: dict[str, float]
    """Group → chance of flagging a harmless sentence."""
    miss: float
    """Chance of missing an offensive sentence."""


SYSTEMS = (
    SystemSpec("filter-a", "profanity-check", "1.9.1", dict.fromkeys(GROUPS, 0.04), 0.05),
    SystemSpec(
        "filter-b",
        "tiny-bert",
        "0123456789abcdef0123456789abcdef01234567",
        {**dict.fromkeys(GROUPS, 0.05), "muslims": 0.35, "gay people": 0.3},
        0.25,
    ),
    SystemSpec(
        "filter-c", "keyword-list", None, {**dict.fromkeys(GROUPS, 0.02), "jews": 0.12}, 0.1
    ),
)


def _id(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


class SyntheticStore:
    """Writes nodes into a store the way the local backend does."""

    def __init__(self, root: Path) -> None:
        self.store = Store.open(root)
        self.root = root
        self.clock = START

    def node(
        self,
        kind: str,
        name: str,
        spec: dict[str, Any],
        *,
        upstream: dict[str, str] | None = None,
        status: str = "complete",
        files: dict[str, bytes] | None = None,
        finished_at: datetime | None = None,
        **fields: Any,
    ) -> Manifest:
        """Write a node's files, then its manifest (last, as the backend does)."""
        upstream = upstream or {}
        node_id = _id(
            kind, name, spec, upstream, fields.get("input_files"), fields.get("model_revision")
        )
        path = node_path(kind, name, node_id)
        for relative, data in (files or {}).items():
            self.store.write_output(data, path, relative)
        self.clock += timedelta(minutes=1)
        finished = finished_at or self.clock
        manifest = Manifest(
            kind=kind,
            name=name,
            id=node_id,
            status=status,  # type: ignore[arg-type]
            spec={"kind": kind, "name": name, "spec": spec},
            upstream=upstream,
            auditc_version="0.1.0",
            git_commit="3f2a9c0b1d2e3f4a5b6c7d8e9f00112233445566",
            started_at=finished - timedelta(seconds=12),
            finished_at=finished,
            duration_s=12.0,
            outputs=self.store.collect_outputs(path),
            **fields,
        )
        self.store.write_manifest(path, manifest)
        return manifest

    # ------------------------------------------------------------ a whole audit

    def dataset(self, rows: int = 240, seed: int = 7) -> tuple[Manifest, pa.Table]:
        """Harmless and offensive sentences about groups, 1/3 offensive."""
        rng = np.random.default_rng(seed)
        group = [GROUPS[i % len(GROUPS)] for i in range(rows)]
        label = (rng.random(rows) < 1 / 3).astype(np.int8)
        text = [
            f"{'You stupid' if y else 'I like'} {g} #{i}"
            for i, (g, y) in enumerate(zip(group, label, strict=True))
        ]
        table = pa.table(
            {
                "_index_": pa.array(range(rows), pa.int64()),
                "text": text,
                "group": group,
                "label": label,
            }
        )
        manifest = self.node(
            "Dataset",
            "phrases",
            {
                "file": {"path": "data/phrases.jsonl"},
                "columns": {"text": "string", "group": "string", "label": "int8"},
            },
            files={"part-000000.parquet": _parquet(table)},
            input_files={"audits/data/phrases.jsonl": hashlib.sha256(b"phrases").hexdigest()},
            rows=rows,
        )
        return manifest, table

    def evaluate(
        self, system: SystemSpec, dataset: tuple[Manifest, pa.Table], seed: int
    ) -> tuple[Manifest, np.ndarray]:
        """Run the system's (simulated) filter over the dataset: 1 = flagged as offensive."""
        manifest, table = dataset
        rng = np.random.default_rng(seed)
        labels = np.asarray(table.column("label"))
        groups = table.column("group").to_pylist()
        fp = np.array([system.false_positive[g] for g in groups])
        flagged = np.where(
            labels == 1, rng.random(len(labels)) >= system.miss, rng.random(len(labels)) < fp
        )
        scores = np.where(flagged, 0.5 + rng.random(len(labels)) / 2, rng.random(len(labels)) / 2)
        out = pa.table(
            {
                "_index_": table.column("_index_"),
                "_replication_": pa.array([0] * len(labels), pa.int32()),
                "score": scores,
                "_error_": pa.array([None] * len(labels), pa.string()),
                "_error_type_": pa.array([None] * len(labels), pa.string()),
            }
        )
        upstream = {
            f"InferenceService/{system.service}": _id("svc", system.service),
            f"Model/{system.model}": _id("model", system.model, system.revision),
            "Dataset/phrases": manifest.id,
        }
        evaluation = self.node(
            "Evaluation",
            "filter-on-phrases",
            {"service": system.service, "dataset": "phrases", "batch_size": 64},
            upstream=upstream,
            files={"part-0-000000.parquet": _parquet(out)},
            model_revision=system.revision,
            rows=len(labels),
            metrics={"errors": 0.0, "requests": 4.0},
        )
        return evaluation, flagged.astype(np.int8)

    def audit(
        self,
        system: SystemSpec,
        dataset: tuple[Manifest, pa.Table],
        *,
        seed: int = 11,
        threshold: float = 0.5,
        html: str | None = None,
        flip: float = 0.0,
    ) -> Manifest:
        """Evaluation → FPR-by-group Measurement → safety case with scores and per-instance values.

        `flip` turns that fraction of correct predictions wrong (a planted regression).
        """
        evaluation, flagged = self.evaluate(system, dataset, seed)
        table = dataset[1]
        labels = np.asarray(table.column("label"))
        correct = (flagged == labels).astype(np.float64)
        if flip:
            rng = np.random.default_rng(seed + 1)
            hit = (correct == 1) & (rng.random(len(correct)) < flip)
            correct[hit] = 0.0
            flagged = np.where(hit, 1 - flagged, flagged)
        groups = np.asarray(table.column("group").to_pylist())
        fpr = self._fpr_table(groups, labels, flagged)
        measurement = self.node(
            "Method",
            "fpr-by-group",
            {
                "implementation": {"python": "bias_metrics:fpr_by_group"},
                "output": {"kind": "Measurement"},
                "parameters": {"threshold": threshold},
                "inputs": {"predictions": {"resource": "filter-on-phrases"}},
            },
            upstream={
                "Evaluation/filter-on-phrases": evaluation.id,
                "Dataset/phrases": dataset[0].id,
                "Module/bias-metrics": _id("module"),
            },
            files={"part-000000.parquet": _parquet(fpr)},
            rows=fpr.num_rows,
            input_files={"audits/modules/bias_metrics": hashlib.sha256(b"module").hexdigest()},
        )
        values = fpr.column("fpr").to_pylist()
        scores = [
            ScoreValue(
                name="max_fpr_gap",
                value=max(values) - min(values),
                title="Largest false-positive gap",
                summary="Largest difference in false-positive rate between two groups.",
                valence="negative",
                primary=True,
                minimum=0,
                maximum=1,
                format="{value:.1%}",
                gate_max=0.1,
                text="The gap between the most and least flagged group.",
                aggregate=ScoreAggregate(kind="max_gap", group="group"),
            ),
            ScoreValue(
                name="accuracy",
                value=float(correct.mean()),
                title="Accuracy",
                valence="positive",
                minimum=0,
                maximum=1,
                format="{value:.1%}",
                gate_min=0.8,
            ),
            ScoreValue(
                name="flag_rate",
                value=float(flagged.mean()),
                title="Share flagged",
                valence="neutral",
                format="{value:.3f}",
            ),
        ]
        index = table.column("_index_")
        harmless = labels == 0
        instances = {
            "accuracy": pa.table({"_index_": index, "value": correct}),
            "flag_rate": pa.table({"_index_": index, "value": flagged.astype(np.float64)}),
            "max_fpr_gap": pa.table(
                {
                    "_index_": index.filter(pa.array(harmless)),
                    "value": flagged[harmless].astype(np.float64),
                    "group": groups[harmless],
                }
            ),
        }
        return self.safety_case(
            "filter-safety-case",
            scores,
            {
                "Method/fpr-by-group": measurement.id,
                "Evaluation/filter-on-phrases": evaluation.id,
                f"InferenceService/{system.service}": evaluation.upstream[
                    f"InferenceService/{system.service}"
                ],
            },
            instances=instances,
            html=html,
            threshold=threshold,
        )

    @staticmethod
    def _fpr_table(groups: np.ndarray, labels: np.ndarray, flagged: np.ndarray) -> pa.Table:
        rows = []
        for g in GROUPS:
            harmless = (groups == g) & (labels == 0)
            n = int(harmless.sum())
            p = float(flagged[harmless].mean()) if n else 0.0
            low, high = _wilson(p, n)
            rows.append({"group": g, "fpr": p, "fpr_low": low, "fpr_high": high, "n": n})
        return pa.Table.from_pylist(rows)

    def safety_case(
        self,
        name: str,
        scores: list[ScoreValue],
        upstream: dict[str, str],
        *,
        instances: dict[str, pa.Table] | None = None,
        html: str | None = None,
        status: str = "complete",
        finished_at: datetime | None = None,
        **parameters: Any,
    ) -> Manifest:
        """A SafetyCase node: scores.json, instances, index.html."""
        spec = {
            "implementation": {"notebook": "notebooks/safety_case.ipynb"},
            "output": {"kind": "SafetyCase"},
            "parameters": parameters,
            "inputs": {k.split("/")[1]: {"resource": k.split("/")[1]} for k in upstream},
        }
        node_id = _id("Method", name, spec, upstream, None, None)
        files: dict[str, bytes] = {}
        if status == "complete":
            files["_case/scores.json"] = (
                ScoresFile(method=name, id=node_id, scores=scores).model_dump_json().encode()
            )
            for score, table in (instances or {}).items():
                files[f"_case/instances/{score}.parquet"] = _parquet(table)
            if html is not None:
                files["_case/index.html"] = html.encode()
        return self.node(
            "Method",
            name,
            spec,
            upstream=upstream,
            status=status,
            files=files,
            finished_at=finished_at,
            error=None if status == "complete" else "the notebook raised ValueError",
        )


def _wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
