"""Stage 4: plans against a git ref and against a store, and their renderings."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler import (
    Baseline,
    GitError,
    load_baseline,
    load_project,
    plan,
    render_plan,
    resolve_graph,
)
from compiler.cli.main import main
from schemas import Manifest, SpecLoadError, Store

BASIC = Path(__file__).parents[2] / "fixtures" / "audits" / "compiler-basic"
WORKFLOWS = [
    "Dataset/identity-phrases",
    "Evaluation/filter-on-identity-phrases",
    "Method/false-positives-by-identity",
    "Method/offensive-filter-safety-case",
]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(BASIC, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def graph_of(root: Path):  # type: ignore[no-untyped-def]
    return resolve_graph(load_project(root, [root / "audits"]))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_against_head_with_no_change_keeps_everything(repo: Path) -> None:
    result = plan(graph_of(repo), load_baseline(repo, [repo / "audits"], against="HEAD"))
    assert [(e.action, e.key) for e in result.entries] == [("keep", k) for k in WORKFLOWS]
    assert not result.has_changes


def test_changing_one_method_re_runs_it_and_its_downstream(repo: Path) -> None:
    edit(repo / "audits" / "analysis.yaml", "threshold: 0.5", "threshold: 0.7")
    git(repo, "commit", "-q", "-am", "change the method")
    result = plan(graph_of(repo), load_baseline(repo, [repo / "audits"], against="HEAD~1"))
    rerun = {e.key: e.reasons for e in result.of("re-run")}
    assert rerun == {
        "Method/false-positives-by-identity": ["spec.parameters.threshold changed"],
        "Method/offensive-filter-safety-case": [
            "upstream Method/false-positives-by-identity changed"
        ],
    }
    assert {e.key for e in result.of("keep")} == {
        "Evaluation/filter-on-identity-phrases",
        "Dataset/identity-phrases",
    }
    assert result.of("create") == result.of("remove") == []


def test_cli_plan_against_previous_commit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo / "audits" / "analysis.yaml", "threshold: 0.5", "threshold: 0.7")
    git(repo, "commit", "-q", "-am", "change the method")
    main(["-C", str(repo), "plan", "--against", "HEAD~1", "--format", "json"])  # returns on success
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 1
    assert data["baseline"] == "git HEAD~1"
    assert [e["name"] for e in data["entries"] if e["action"] == "re-run"] == [
        "false-positives-by-identity",
        "offensive-filter-safety-case",
    ]
    # The working tree was not touched: the new value is still there, nothing is staged.
    assert "threshold: 0.7" in (repo / "audits" / "analysis.yaml").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_config_changes_appear_as_reasons(repo: Path) -> None:
    edit(repo / "audits" / "services.yaml", "batching: true", "batching: false")
    edit(repo / "audits" / "data" / "identity_phrases.jsonl", "woman", "women")
    result = plan(graph_of(repo), load_baseline(repo, [repo / "audits"], against="HEAD"))
    rerun = {e.key: e.reasons for e in result.of("re-run")}
    assert rerun["Dataset/identity-phrases"] == ["file audits/data/identity_phrases.jsonl changed"]
    assert rerun["Evaluation/filter-on-identity-phrases"] == [
        "upstream InferenceService/offensive-filter changed (spec.interface.batching changed)",
        "upstream Dataset/identity-phrases changed",
    ]


def test_added_and_removed_resources(repo: Path) -> None:
    analysis = repo / "audits" / "analysis.yaml"
    text = analysis.read_text()
    head, _, _ = text.partition("---\nkind: Method\nname: offensive-filter-safety-case")
    analysis.write_text(
        head
        + "---\n"
        + text.split("---\n")[0]
        .replace("name: filter-on-identity-phrases", "name: second-evaluation")
        .replace("concurrency: 8", "concurrency: 4")
    )
    result = plan(graph_of(repo), load_baseline(repo, [repo / "audits"], against="HEAD"))
    assert [e.key for e in result.of("create")] == ["Evaluation/second-evaluation"]
    assert [e.key for e in result.of("remove")] == ["Method/offensive-filter-safety-case"]


def test_specs_missing_at_the_ref_mean_everything_is_created(repo: Path) -> None:
    (repo / "more").mkdir()
    (repo / "more" / "x.yaml").write_text("kind: Module\nname: more-code\nspec: {path: .}\n")
    baseline = load_baseline(repo, [repo / "audits", repo / "more"], against="HEAD")
    assert "Module/more-code" not in baseline.nodes
    assert "Dataset/identity-phrases" in baseline.nodes


def test_unknown_ref_and_not_a_repo(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="unknown git ref 'nope'"):
        load_baseline(repo, [repo / "audits"], against="nope")
    plain = tmp_path / "plain"
    shutil.copytree(BASIC, plain)
    with pytest.raises(GitError, match="not inside a git repository"):
        load_baseline(plain, [plain / "audits"], against="HEAD")


def test_invalid_specs_at_the_ref_are_named_with_the_ref(repo: Path) -> None:
    (repo / "audits" / "bad.yaml").write_text("kind: [\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "broken")
    (repo / "audits" / "bad.yaml").unlink()
    with pytest.raises(SpecLoadError) as info:
        load_baseline(repo, [repo / "audits"], against="HEAD")
    assert info.value.issues[0].file == "HEAD:audits/bad.yaml"


def test_project_in_a_subdirectory_of_the_repo(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    shutil.copytree(BASIC, root / "safety")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    project = root / "safety"
    result = plan(graph_of(project), load_baseline(project, [project / "audits"], against="HEAD"))
    assert {e.action for e in result.entries} == {"keep"}


# ------------------------------------------------------------------ store baseline


def write_manifest(store: Store, graph, node, status: str = "complete") -> None:  # type: ignore[no-untyped-def]
    """A manifest as the local backend writes it: the whole resource, every upstream node."""
    now = datetime.now(UTC)
    store.write_manifest(
        node.store_path,
        Manifest(
            kind=node.kind,
            name=node.name,
            id=node.id,
            status=status,  # type: ignore[arg-type]
            spec=node.resource.model_dump(mode="json"),
            upstream={graph[n].key: graph[n].id for n in graph.upstream(node.name)},
            input_files=dict(node.files),
            auditc_version="0.1.0",
            started_at=now,
            finished_at=now,
            duration_s=0.0,
        ),
    )


def test_store_baseline(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(BASIC, root)
    graph = graph_of(root)
    store = Store.open(root / ".auditc")
    write_manifest(store, graph, graph["identity-phrases"])
    write_manifest(store, graph, graph["filter-on-identity-phrases"], status="failed")
    write_manifest(store, graph, graph["false-positives-by-identity"])
    gone = graph["identity-phrases"]
    store.write_manifest(
        "dataset/old-data/0123456789abcdef0123",
        Manifest.model_validate(
            {
                **json.loads(store.read_bytes(gone.store_path, "_manifest.json")),
                "name": "old-data",
                "id": "0123456789abcdef0123",
            }
        ),
    )
    edit(root / "audits" / "analysis.yaml", "threshold: 0.5", "threshold: 0.9")
    result = plan(graph_of(root), load_baseline(root, [root / "audits"]))
    assert [(e.action, e.key) for e in result.entries] == [
        ("keep", "Dataset/identity-phrases"),
        ("re-run", "Evaluation/filter-on-identity-phrases"),
        ("re-run", "Method/false-positives-by-identity"),
        ("create", "Method/offensive-filter-safety-case"),
        ("remove", "Dataset/old-data"),
    ]
    assert result.entries[1].reasons == ["the last run failed"]
    assert result.entries[2].reasons == ["spec.parameters.threshold changed"]


def test_missing_store_is_an_empty_baseline(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(BASIC, root)
    result = plan(graph_of(root), load_baseline(root, [root / "audits"]))
    assert {e.action for e in result.entries} == {"create"}
    assert not (root / ".auditc").exists()


# ------------------------------------------------------------------ rendering


def test_renderings(repo: Path) -> None:
    edit(repo / "audits" / "analysis.yaml", "threshold: 0.5", "threshold: 0.7")
    graph = graph_of(repo)
    result = plan(graph, load_baseline(repo, [repo / "audits"], against="HEAD"))
    fpr = graph["false-positives-by-identity"].id
    text = render_plan(result, "text")
    assert text.splitlines()[0] == (
        "Plan against git HEAD: 0 to create, 2 to re-run, 2 to keep, 0 to remove."
    )
    assert f"  ~ Method/false-positives-by-identity  {fpr} (was " in text
    assert "      spec.parameters.threshold changed" in text
    markdown = render_plan(result, "markdown")
    assert "| ~ re-run | `Method/false-positives-by-identity` | " in markdown
    assert "<details><summary>2 kept</summary>" in markdown
    assert json.loads(render_plan(result, "json"))["entries"][0]["action"] == "keep"


def test_empty_baseline_creates_every_workflow(repo: Path) -> None:
    result = plan(graph_of(repo), Baseline.empty())
    assert [e.key for e in result.of("create")] == WORKFLOWS


def test_store_baseline_reasons_after_a_data_change(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(BASIC, root)
    graph = graph_of(root)
    store = Store.open(root / ".auditc")
    for node in graph:
        if node.is_workflow:
            write_manifest(store, graph, node)
    edit(root / "audits" / "data" / "identity_phrases.jsonl", "woman", "women")
    result = plan(graph_of(root), load_baseline(root, [root / "audits"]))
    assert {e.key: e.reasons for e in result.entries} == {
        "Dataset/identity-phrases": ["file audits/data/identity_phrases.jsonl changed"],
        "Evaluation/filter-on-identity-phrases": ["upstream Dataset/identity-phrases changed"],
        "Method/false-positives-by-identity": [
            "upstream Evaluation/filter-on-identity-phrases changed",
            "upstream Dataset/identity-phrases changed",
        ],
        "Method/offensive-filter-safety-case": [
            "upstream Method/false-positives-by-identity changed"
        ],
    }
