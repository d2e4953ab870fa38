"""A SafetyCase's scores as Parquet: the node's data, so that readers of Parquet see them too.

Every node of the store has its rows at its top level (`part-*.parquet`); for a safety
case those rows are its scores, one per score, beside `_case/scores.json`.
"""

from __future__ import annotations

from schemas import ScoreValue, Store

__all__ = ["SCORES_PART", "scores_table_bytes", "write_scores_part"]

SCORES_PART = "part-00000.parquet"


def scores_table_bytes(scores: list[ScoreValue]) -> bytes:
    """The scores as one Parquet file: name, value, value as shown, spec and gate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
            ("formatted", pa.string()),
            ("primary", pa.bool_()),
            ("valence", pa.string()),
            ("unit", pa.string()),
            ("minimum", pa.float64()),
            ("maximum", pa.float64()),
            ("gate_min", pa.float64()),
            ("gate_max", pa.float64()),
            ("title", pa.string()),
            ("text", pa.string()),
        ]
    )
    rows = [
        {
            "name": s.name,
            "value": s.value,
            "formatted": s.formatted(),
            "primary": s.primary,
            "valence": s.valence,
            "unit": s.unit,
            "minimum": s.minimum,
            "maximum": s.maximum,
            "gate_min": s.gate_min,
            "gate_max": s.gate_max,
            "title": s.title,
            "text": s.text,
        }
        for s in scores
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return bytes(sink.getvalue().to_pybytes())


def write_scores_part(store: Store, scores: list[ScoreValue]) -> None:
    """Write the scores table into the node (opened as the store root)."""
    store.write_output(scores_table_bytes(scores), "", SCORES_PART)
