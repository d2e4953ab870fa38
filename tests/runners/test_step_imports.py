"""Dataset and Evaluation step processes convert to Arrow without importing pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_CONVERT = """
import sys
{setup}
import pyarrow as pa
table = pa.table({{"row": pa.array(range(3), pa.int64()), "text": ["a", "b", None]}})
assert table.num_rows == 3 and table.column("text").null_count == 1
print("pandas" in sys.modules)
"""


def _pandas_imported(setup: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", _CONVERT.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "True"


def test_pyarrow_imports_pandas_at_its_first_conversion() -> None:
    # What keep_pandas_out is for (the test install has pandas): a conversion pulls it in.
    assert _pandas_imported("")


def test_a_step_that_keeps_pandas_out_converts_without_it() -> None:
    assert not _pandas_imported("from runners._entry import keep_pandas_out; keep_pandas_out()")


@pytest.mark.parametrize("step", ["runners/datasets/__main__.py", "runners/evaluation/__main__.py"])
def test_dataset_and_evaluation_steps_keep_pandas_out(step: str) -> None:
    source = (REPO / step).read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":\n    keep_pandas_out()\n' in source
