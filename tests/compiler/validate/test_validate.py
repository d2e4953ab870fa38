"""Stage 2: a valid project loads; issues are all reported, located, and of the right class."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler import hash_path, load_project
from schemas import GraphError, SpecLoadError, SpecValidationError

BASIC = Path(__file__).parents[2] / "fixtures" / "audits" / "compiler-basic"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copytree(BASIC, tmp_path / "p")
    return tmp_path / "p"


def test_valid_project_loads_with_hashes(project: Path) -> None:
    loaded = load_project(project, [project / "audits"])
    # Files in sorted order, documents in file order.
    assert list(loaded.resources) == [
        "filter-on-identity-phrases",
        "false-positives-by-identity",
        "offensive-filter-safety-case",
        "identity-phrases",
        "bias-metrics",
        "profanity-check",
        "offensive-filter",
    ]
    data = project / "audits" / "data" / "identity_phrases.jsonl"
    assert loaded.file_hashes["audits/data/identity_phrases.jsonl"] == hash_path(data)
    assert set(loaded.file_hashes) == {
        "audits/data/identity_phrases.jsonl",
        "audits/bias_metrics",
        "audits/notebooks/safety_case.ipynb",
    }
    evaluation = loaded.resources["filter-on-identity-phrases"]
    assert str(evaluation.locate(("spec", "service"))) == "audits/analysis.yaml:4:12"


def test_a_single_file_path_is_accepted(project: Path) -> None:
    (project / "audits" / "analysis.yaml").unlink()
    loaded = load_project(project, [project / "audits" / "data.yaml"])
    assert list(loaded.resources) == ["identity-phrases"]


def test_field_and_graph_issues_are_reported_together(project: Path) -> None:
    analysis = project / "audits" / "analysis.yaml"
    text = analysis.read_text()
    text = text.replace("concurrency: 8", "concurrency: -1").replace(
        "resource: identity-phrases", "resource: identity-phrase"
    )
    analysis.write_text(text)
    with pytest.raises(SpecValidationError) as info:
        load_project(project, [project / "audits"])
    codes = [issue.code for issue in info.value.issues]
    assert codes == ["greater-than-equal", "unknown-reference"]
    assert str(info.value).splitlines()[-1] == "2 errors in 1 file"


def test_load_errors_take_precedence_but_keep_the_rest(project: Path) -> None:
    (project / "audits" / "broken.yaml").write_text("kind: [\n")
    services = project / "audits" / "services.yaml"
    services.write_text(services.read_text().replace("kind: python", "kind: pithon"))
    with pytest.raises(SpecLoadError) as info:
        load_project(project, [project / "audits"])
    # The service is invalid and a file is unreadable: references to the service are not
    # reported as unknown (that would be noise), but the service's own error is.
    assert [(i.file, i.code) for i in info.value.issues] == [
        ("audits/broken.yaml", "yaml-syntax"),
        ("audits/services.yaml", "unknown-kind"),
    ]


def test_graph_only_problems_raise_graph_error(project: Path) -> None:
    (project / "audits" / "data" / "identity_phrases.jsonl").unlink()
    with pytest.raises(GraphError) as info:
        load_project(project, [project / "audits"])
    assert [i.render() for i in info.value.issues] == [
        "audits/data.yaml:8:11: Dataset/identity-phrases: spec.file.path: file "
        "'audits/data/identity_phrases.jsonl' does not exist [missing-file]"
    ]


def test_module_symlink_inside_the_root_is_hashed_by_content(project: Path) -> None:
    before = load_project(project, [project / "audits"]).file_hashes["audits/bias_metrics"]
    (project / "audits" / "bias_metrics" / "link.py").symlink_to("fpr.py")
    after = load_project(project, [project / "audits"]).file_hashes["audits/bias_metrics"]
    assert after != before
