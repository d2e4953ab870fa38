"""`auditc validate --format json`: every problem of the invalid corpus as data, same as the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli.main import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
INVALID = FIXTURES / "invalid"
CASES = sorted(p.name for p in INVALID.iterdir() if (p / "audits").exists())
FIELDS = ["file", "line", "column", "kind", "name", "field", "code", "message"]


def as_text(error: dict[str, object]) -> str:
    """The text form of one JSON error, as `auditc validate` prints it."""
    where = f"{error['file']}:{error['line']}:{error['column']}" if error["line"] else error["file"]
    parts = [str(where)]
    if error["kind"]:
        parts.append(f"{error['kind']}/{error['name']}")
    if error["field"]:
        parts.append(str(error["field"]))
    return ": ".join(parts) + f": {error['message']} [{error['code']}]"


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_one_object(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The exit code comes back from main (the console script exits with it).
    assert main(["-C", str(INVALID / case), "validate", "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ""
    document = json.loads(captured.out)
    assert document["schema_version"] == 1 and document["ok"] is False
    errors = document["errors"]
    assert errors and all(list(e) == FIELDS for e in errors)
    expected = (INVALID / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert [as_text(e) for e in errors] == expected[:-1]  # the last line is the count
    for error in errors:
        assert isinstance(error["file"], str) and error["file"].startswith("audits")
        assert error["line"] is None or (isinstance(error["line"], int) and error["line"] >= 1)


def test_a_valid_project_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    main(["-C", str(FIXTURES / "audits" / "compiler-basic"), "validate", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "schema_version": 1,
        "ok": True,
        "resources": 7,
        "workflows": 4,
        "files": 3,
        "errors": [],
    }
