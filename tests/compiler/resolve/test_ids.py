"""Stage 3: content-addressed ids depend on content only, and changes flow downstream."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler import load_project, resolve_graph

BASIC = Path(__file__).parents[2] / "fixtures" / "audits" / "compiler-basic"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copytree(BASIC, tmp_path / "p", symlinks=True)
    return tmp_path / "p"


def ids(root: Path) -> dict[str, str]:
    graph = resolve_graph(load_project(root, [root / "audits"]))
    return {node.key: node.id for node in graph}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert before.keys() == after.keys()
    return {key for key in before if before[key] != after[key]}


def test_reformatting_and_key_order_keep_ids(project: Path) -> None:
    before = ids(project)
    (project / "audits" / "data.yaml").write_text(
        "# reformatted: flow style, other key order, comments\n"
        "spec: {columns: {identity: string, label: int8, text: string},\n"
        "       file: {path: './data/../data/identity_phrases.jsonl'}}\n"
        "name: identity-phrases   # same name\n"
        "kind: Dataset\n"
    )
    assert ids(project) == before


def test_moving_a_resource_to_another_file_keeps_ids(project: Path) -> None:
    before = ids(project)
    services = (project / "audits" / "services.yaml").read_text()
    module, rest = services.split("---\n", 1)
    (project / "audits" / "services.yaml").write_text(rest)
    (project / "audits" / "more").mkdir()
    # Paths are relative to the YAML file, so the moved Module names its directory from there.
    (project / "audits" / "more" / "module.yaml").write_text(
        module.replace("path: bias_metrics", "path: ../bias_metrics")
    )
    assert ids(project) == before


def test_documentation_and_labels_do_not_change_ids(project: Path) -> None:
    before = ids(project)
    path = project / "audits" / "data.yaml"
    path.write_text(
        path.read_text().replace("title: Identity phrases", "title: Other title")
        + "labels: {team: safety}\n"
    )
    assert ids(project) == before


def test_a_data_byte_changes_the_dataset_and_its_downstream_only(project: Path) -> None:
    before = ids(project)
    data = project / "audits" / "data" / "identity_phrases.jsonl"
    data.write_bytes(data.read_bytes().replace(b"woman", b"women"))
    assert changed(before, ids(project)) == {
        "Dataset/identity-phrases",
        "Evaluation/filter-on-identity-phrases",
        "Method/false-positives-by-identity",
        "Method/offensive-filter-safety-case",
    }


def test_module_code_changes_the_methods_that_use_it(project: Path) -> None:
    before = ids(project)
    (project / "audits" / "bias_metrics" / "fpr.py").write_text("def fpr_by_group(): ...\n")
    # Bytecode caches and dotfiles are not part of a module's content.
    (project / "audits" / "bias_metrics" / "__pycache__").mkdir()
    (project / "audits" / "bias_metrics" / "__pycache__" / "fpr.cpython-311.pyc").write_bytes(b"x")
    assert changed(before, ids(project)) == {
        "Module/bias-metrics",
        "Method/false-positives-by-identity",
        "Method/offensive-filter-safety-case",
    }


def test_ignored_files_do_not_change_a_module(project: Path) -> None:
    before = ids(project)
    (project / "audits" / "bias_metrics" / ".DS_Store").write_bytes(b"junk")
    # Bytecode caches are never read by the runners (a private PYTHONPYCACHEPREFIX);
    # a sourceless `x.pyc` beside the code would be, and is refused (tests/security).
    (project / "audits" / "bias_metrics" / "__pycache__").mkdir()
    (project / "audits" / "bias_metrics" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"j")
    assert ids(project) == before


def test_a_setting_changes_that_node_and_downstream(project: Path) -> None:
    before = ids(project)
    path = project / "audits" / "analysis.yaml"
    path.write_text(path.read_text().replace("threshold: 0.5", "threshold: 0.6"))
    assert changed(before, ids(project)) == {
        "Method/false-positives-by-identity",
        "Method/offensive-filter-safety-case",
    }


def test_a_default_written_out_keeps_the_id(project: Path) -> None:
    before = ids(project)
    path = project / "audits" / "analysis.yaml"
    path.write_text(path.read_text().replace("concurrency: 8", "concurrency: 8\n  replications: 1"))
    assert ids(project) == before


def test_a_service_change_reaches_evaluation_and_methods(project: Path) -> None:
    before = ids(project)
    path = project / "audits" / "services.yaml"
    path.write_text(path.read_text().replace("batching: true", "batching: false"))
    assert changed(before, ids(project)) == {
        "InferenceService/offensive-filter",
        "Evaluation/filter-on-identity-phrases",
        "Method/false-positives-by-identity",
        "Method/offensive-filter-safety-case",
    }
