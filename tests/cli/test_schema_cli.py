"""`auditc schema`: the committed JSON Schema and reference are current, and specs validate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from compiler import embed_reference, render_schema, spec_reference_markdown
from compiler._load import discover_spec_files, load_files
from compiler.cli.main import main

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "schemas" / "auditc-spec.schema.json"
REFERENCE_FILE = ROOT / "docs" / "reference.md"
FIXTURES = ROOT / "tests" / "fixtures" / "audits"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "schemas/auditc-spec.schema.json is stale: run "
        "`auditc schema -o schemas/auditc-spec.schema.json`"
    )


def test_committed_reference_is_current() -> None:
    assert REFERENCE_FILE.read_text(encoding="utf-8") == spec_reference_markdown(), (
        "docs/reference.md is stale: run `auditc schema --format markdown -o docs/reference.md`"
    )


def test_readme_reference_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == embed_reference(readme), (
        "the README's spec reference is stale: run `make readme`"
    )
    assert "### InferenceService" in readme and "| `concurrency` |" in readme


def _documents(root: Path, directory: Path) -> list[tuple[str, object]]:
    files, issues = discover_spec_files(root, [directory])
    assert issues == []
    loaded = load_files(root, files)
    assert loaded.issues == []
    return [(f"{d.file}#{d.index}", d.data) for d in loaded.documents]


def _spec_documents() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    if (ROOT / "audits").is_dir():
        found += _documents(ROOT, ROOT / "audits")
    found += _documents(ROOT, FIXTURES / "compiler-basic" / "audits")
    return found


@pytest.mark.parametrize(("where", "document"), _spec_documents(), ids=lambda v: str(v)[:60])
def test_specs_validate_against_the_schema(where: str, document: object) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert errors == [], where


def test_schema_rejects_what_validate_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    bad = {"kind": "Evaluation", "name": "e", "spec": {"service": "s", "dataset": "d", "x": 1}}
    assert not validator.is_valid(bad)
    assert not validator.is_valid({"kind": "Datset", "name": "e", "spec": {}})


def test_schema_command_prints_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    main(["schema"])
    assert json.loads(capsys.readouterr().out)["$schema"].endswith("2020-12/schema")
    main(["schema", "--format", "markdown"])
    out = capsys.readouterr().out
    assert out.startswith("# Spec reference")
    for kind in (
        "Dataset",
        "Model",
        "Module",
        "InferenceService",
        "InferenceSession",
        "Evaluation",
        "Method",
    ):
        assert f"\n## {kind}\n" in out


def test_schema_output_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    main(["schema", "-o", str(target)])
    assert target.read_text() == render_schema()
