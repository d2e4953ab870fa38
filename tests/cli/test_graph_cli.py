"""`auditc graph`: text, JSON and DOT renderings of the resolved graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compiler import load_project, resolve_graph
from compiler.cli.main import main

BASIC = Path(__file__).parents[2] / "tests" / "fixtures" / "audits" / "compiler-basic"


@pytest.fixture(scope="module")
def ids() -> dict[str, str]:
    return {n.key: n.id for n in resolve_graph(load_project(BASIC, [BASIC / "audits"]))}


def graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(["-C", str(BASIC), "graph", *args])
    return capsys.readouterr().out


def test_text(capsys: pytest.CaptureFixture[str], ids: dict[str, str]) -> None:
    lines = graph(capsys).splitlines()
    assert lines[-1] == "7 nodes"
    evaluation = ids["Evaluation/filter-on-identity-phrases"]
    assert (
        f"{evaluation}  Evaluation/filter-on-identity-phrases  <- "
        "InferenceService/offensive-filter, Dataset/identity-phrases"
    ) in lines


def test_json(capsys: pytest.CaptureFixture[str], ids: dict[str, str]) -> None:
    data = json.loads(graph(capsys, "--format", "json"))
    assert data["schema_version"] == 1
    assert {n["key"]: n["id"] for n in data["nodes"]} == ids
    assert {
        "from": "Method/false-positives-by-identity",
        "to": "Method/offensive-filter-safety-case",
    } in data["edges"]
    method = next(n for n in data["nodes"] if n["name"] == "offensive-filter-safety-case")
    assert method["output_kind"] == "SafetyCase"
    assert method["files"] == {
        "audits/notebooks/safety_case.ipynb": method["files"]["audits/notebooks/safety_case.ipynb"]
    }


def test_dot_follows_the_data_flow_with_a_style_per_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dot = graph(capsys, "--format", "dot")
    assert dot.startswith("digraph auditc {") and dot.rstrip().endswith("}")
    shapes = dict(re.findall(r'label="(\w+)\\n[^"]*", shape=(\w+)', dot))
    assert shapes == {
        "Dataset": "cylinder",
        "Module": "folder",
        "Model": "box3d",
        "InferenceService": "component",
        "Evaluation": "box",
        "Method": "hexagon",
        "Measurement": "note",
        "SafetyCase": "tab",
    }
    # Methods produce their output node, and consumers read that output.
    assert (
        '"Method/false-positives-by-identity" -> "Method/false-positives-by-identity#output";'
        in dot
    )
    assert (
        '"Method/false-positives-by-identity#output" -> "Method/offensive-filter-safety-case";'
        in dot
    )
    assert '"Dataset/identity-phrases" -> "Evaluation/filter-on-identity-phrases";' in dot
    # Every edge names declared nodes only.
    declared = set(re.findall(r'^  "([^"]+)" \[', dot, flags=re.M))
    for source, target in re.findall(r'^  "([^"]+)" -> "([^"]+)";', dot, flags=re.M):
        assert source in declared and target in declared
