"""Every broken spec under tests/fixtures/invalid/ fails `auditc validate` with its exact message.

Each case is a project directory whose `audits/` holds the broken spec; its
`expected.txt` is the exact stderr. Set AUDITC_UPDATE_EXPECTED=1 to rewrite the
expected files after an intended message change (then review the diff).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compiler.cli.main import main

INVALID = Path(__file__).parents[2] / "fixtures" / "invalid"
CASES = sorted(p.name for p in INVALID.iterdir() if (p / "audits").exists())


def run_validate(project: Path, *args: str) -> tuple[int, float]:
    """Run `auditc -C project validate ARGS` in-process through the real CLI boundary."""
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["-C", str(project), "validate", *args])
    return int(exit_info.value.code or 0), time.perf_counter() - start


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_invalid_spec(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = INVALID / case
    code, elapsed = run_validate(project)
    captured = capsys.readouterr()
    expected_file = project / "expected.txt"
    if os.environ.get("AUDITC_UPDATE_EXPECTED") == "1":
        expected_file.write_text(captured.err, encoding="utf-8")
    assert code == 2
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err == expected_file.read_text(encoding="utf-8")
    # Every message names the file, and (except for whole-file problems) line and column.
    first = captured.err.splitlines()[0]
    assert first.startswith("audits")
    assert elapsed < 2.0


def test_huge_file_is_refused_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audits = tmp_path / "audits"
    audits.mkdir()
    line = "# " + "x" * 1021 + "\n"
    with (audits / "huge.yaml").open("w") as handle:
        handle.write("kind: Dataset\nname: huge\n")
        for _ in range(10 * 1024 + 10):
            handle.write(line)
    size = (audits / "huge.yaml").stat().st_size
    code, elapsed = run_validate(tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"audits/huge.yaml: file is {size:,} bytes; spec files may be at most "
        "10,485,760 bytes [file-too-large]\n1 error in 1 file\n"
    )
    assert elapsed < 2.0
