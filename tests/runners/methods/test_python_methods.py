"""Python-function methods: Arrow inputs and parameters in, a checked Measurement out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars
import pyarrow as pa
import pytest
from methods_support import make_method, module_name, python_config

from runners.methods import MethodResult, run_method
from schemas import MethodError, Store

SOURCE = """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    def flag(phrases, threshold):
        assert isinstance(phrases, ds.Dataset), type(phrases)
        for batch in phrases.to_batches(columns=["_index_", "score"], batch_size=4):
            yield pa.record_batch({
                "_index_": batch["_index_"],
                "flagged": pc.greater(batch["score"], threshold),
                "score": batch["score"],
            })

    def rate_by_group(phrases, threshold):
        t = phrases.to_table()
        flagged = pc.cast(pc.greater(t["score"], threshold), pa.int64())
        t = t.append_column("flagged", flagged)
        out = t.group_by("group").aggregate([("flagged", "mean"), ("flagged", "count")])
        return out.rename_columns(["group", "rate", "n"]).sort_by("group")

    def as_polars(phrases):
        import polars
        return polars.from_arrow(phrases.to_table()).select(["_index_", "text"])

    def broken(phrases):
        return 1 / 0

    def broken_later(phrases):
        yield pa.table({"_index_": [0]})
        raise RuntimeError("ran out of patience")

    def nothing(phrases):
        return None

    def not_arrow(phrases):
        return {"a": 1}

    def duplicate_rows(phrases):
        return pa.table({"_index_": [0, 0], "v": [1.0, 2.0]})

    def empty(phrases):
        return iter(())
"""


def _run(
    store: Path, module_dir: Callable[[str], Path], function: str, **spec: object
) -> MethodResult:
    directory = module_dir(SOURCE)
    spec.setdefault("output", {"kind": "Measurement"})
    method = make_method(
        "m", {"implementation": {"python": f"{module_name(directory)}:{function}"}, **spec}
    )
    return run_method(python_config(store, method, directory))


def _output(store: Path) -> pa.Table:
    return Store.open(store / "method" / "m" / "m1").open_dataset("").to_table()


def test_generator_of_batches_becomes_an_instance_measurement(
    store: Path, module_dir: Callable[[str], Path]
) -> None:
    output = {
        "kind": "Measurement",
        "level": "instance",
        "columns": {"flagged": "bool", "score": "float32"},
    }
    result = _run(store, module_dir, "flag", parameters={"threshold": 0.5}, output=output)
    assert result == MethodResult(rows=6, scores=[])
    table = _output(store).sort_by("_index_")
    assert table.schema.names == ["_index_", "flagged", "score"]
    assert table.schema.field("score").type == pa.float32()  # cast to the declared type
    assert table.column("flagged").to_pylist() == [False, True, False, True, True, False]


def test_returned_table_becomes_a_dataset_measurement(
    store: Path, module_dir: Callable[[str], Path]
) -> None:
    result = _run(store, module_dir, "rate_by_group", parameters={"threshold": 0.5})
    assert result.rows == 2
    rows = _output(store).to_pylist()
    assert rows == [
        {"group": "x", "rate": pytest.approx(1 / 3), "n": 3},
        {"group": "y", "rate": pytest.approx(2 / 3), "n": 3},
    ]


def test_polars_dataframe_is_accepted(store: Path, module_dir: Callable[[str], Path]) -> None:
    assert polars.__version__
    result = _run(
        store, module_dir, "as_polars", output={"kind": "Measurement", "level": "instance"}
    )
    assert result.rows == 6
    assert _output(store).schema.field("_index_").type == pa.int64()


def test_stale_parts_of_an_earlier_attempt_are_removed(
    store: Path, module_dir: Callable[[str], Path]
) -> None:
    Store.open(store / "method" / "m" / "m1").write_bytes(b"old", "part-00042.parquet")
    _run(store, module_dir, "rate_by_group", parameters={"threshold": 0.5})
    node = Store.open(store / "method" / "m" / "m1")
    assert node.list_files() == ["_digests/part-00000.parquet.json", "part-00000.parquet"]


@pytest.mark.parametrize(
    ("function", "spec", "message"),
    [
        (
            "broken",
            {},
            r"tmod_\w+:broken raised ZeroDivisionError: division by zero \(at .*\.py:\d+\)",
        ),
        ("broken_later", {}, "raised RuntimeError: ran out of patience"),
        ("nothing", {}, "returned None; expected Arrow data"),
        ("not_arrow", {}, "returned a dict; expected a pyarrow Table"),
        (
            "rate_by_group",
            {
                "parameters": {"threshold": 0.5},
                "output": {"kind": "Measurement", "level": "instance"},
            },
            r"an instance-level Measurement needs an '_index_' column \(the output has: group, rate, n\)",
        ),
        (
            "duplicate_rows",
            {"output": {"kind": "Measurement", "level": "instance"}},
            "one row per _index_, but _index_=0 appears 2 times",
        ),
        (
            "rate_by_group",
            {
                "parameters": {"threshold": 0.5},
                "output": {
                    "kind": "Measurement",
                    "columns": {"group": "string", "rate": "float64"},
                },
            },
            "the output has column 'n', but spec.output.columns does not declare it",
        ),
        (
            "rate_by_group",
            {
                "parameters": {"threshold": 0.5},
                "output": {"kind": "Measurement", "columns": {"group": "string", "fpr": "float64"}},
            },
            "the output has no column 'fpr'",
        ),
        (
            "rate_by_group",
            {
                "parameters": {"threshold": 0.5},
                "output": {
                    "kind": "Measurement",
                    "columns": {"group": "int64", "rate": "float64", "n": "int64"},
                },
            },
            "column 'group' is string, which cannot be cast to the declared int64",
        ),
        ("empty", {}, "produced no data and spec.output.columns declares none"),
        (
            "rate_by_group",
            {"parameters": {"phrases": 1}},
            "phrases is both an input and a parameter",
        ),
        ("rate_by_group", {}, "raised TypeError"),  # missing parameter `threshold`
        ("no_such_function", {}, "has no attribute 'no_such_function'"),
    ],
)
def test_bad_functions_and_outputs_fail_with_a_clear_message(
    store: Path,
    module_dir: Callable[[str], Path],
    function: str,
    spec: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(MethodError, match=message):
        _run(store, module_dir, function, **spec)


def test_missing_module_says_where_to_look(store: Path, module_dir: Callable[[str], Path]) -> None:
    directory = module_dir(SOURCE)
    method = make_method(
        "m", {"implementation": {"python": "no_such_module:f"}, "output": {"kind": "Measurement"}}
    )
    with pytest.raises(
        MethodError, match="cannot import module 'no_such_module'.*method's modules"
    ):
        run_method(python_config(store, method, directory))


def test_empty_output_with_declared_columns_writes_an_empty_part(
    store: Path, module_dir: Callable[[str], Path]
) -> None:
    output = {"kind": "Measurement", "level": "instance", "columns": {"v": "float64"}}
    assert _run(store, module_dir, "empty", output=output).rows == 0
    table = _output(store)
    assert table.num_rows == 0
    assert table.schema.names == ["_index_", "v"]
