"""Stage 1: YAML → documents with positions, safe tags only, limits."""

from __future__ import annotations

from pathlib import Path

from compiler import SourceLocation
from compiler._load import MAX_DEPTH, discover_spec_files, load_text


def test_positions_of_values_and_keys() -> None:
    text = b"kind: Evaluation\nname: e\nspec:\n  service: svc\n  dataset: [a, b]\n"
    (doc,), issues = load_text(text, "audits/e.yaml")
    assert issues == []
    assert doc.data == {
        "kind": "Evaluation",
        "name": "e",
        "spec": {"service": "svc", "dataset": ["a", "b"]},
    }
    assert doc.location == SourceLocation("audits/e.yaml", 1, 1)
    assert doc.positions[("spec", "service")] == SourceLocation("audits/e.yaml", 4, 12)
    assert doc.key_positions[("spec", "service")] == SourceLocation("audits/e.yaml", 4, 3)
    assert doc.positions[("spec", "dataset", 1)] == SourceLocation("audits/e.yaml", 5, 16)


def test_several_documents_keep_their_own_lines() -> None:
    docs, issues = load_text(b"kind: A\n---\nkind: B\n---\n# comment\nkind: C\n", "f.yaml")
    assert issues == []
    assert [(d.index, d.data["kind"], d.location.line) for d in docs] == [
        (0, "A", 1),
        (1, "B", 3),
        (2, "C", 6),
    ]


def test_timestamps_stay_text_and_scalars_are_typed() -> None:
    (doc,), _ = load_text(b"a: 2024-01-31\nb: 3\nc: 1.5\nd: true\ne: null\nf: '7'\n", "f.yaml")
    assert doc.data == {"a": "2024-01-31", "b": 3, "c": 1.5, "d": True, "e": None, "f": "7"}


def test_a_bad_document_does_not_hide_the_good_ones() -> None:
    docs, issues = load_text(
        b"kind: A\n---\na: !!python/name:os.system x\n---\nkind: C\n", "f.yaml"
    )
    assert [d.data["kind"] for d in docs] == ["A", "C"]
    assert [(i.line, i.code) for i in issues] == [(3, "unsafe-tag")]


def test_aliases_within_limits_are_expanded() -> None:
    (doc,), issues = load_text(b"base: &b {x: 1}\nother: *b\n", "f.yaml")
    assert issues == []
    assert doc.data == {"base": {"x": 1}, "other": {"x": 1}}


def test_nesting_at_the_limit_is_fine_and_one_more_is_not() -> None:
    ok = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    too_deep = "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert load_text(ok.encode(), "f.yaml")[1] == []
    assert [i.code for i in load_text(too_deep.encode(), "f.yaml")[1]] == ["too-deep"]


def test_bom_is_accepted() -> None:
    (doc,), issues = load_text(b"\xef\xbb\xbfkind: A\n", "f.yaml")
    assert issues == [] and doc.data == {"kind": "A"}


def test_discovery_is_sorted_recursive_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "audits" / "b").mkdir(parents=True)
    (tmp_path / "audits" / ".hidden").mkdir()
    for name in (
        "audits/z.yaml",
        "audits/a.yml",
        "audits/b/c.yaml",
        "audits/.hidden/x.yaml",
        "audits/n.txt",
    ):
        (tmp_path / name).write_text("kind: A\n")
    files, issues = discover_spec_files(tmp_path, [tmp_path / "audits"])
    assert issues == []
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "audits/a.yml",
        "audits/b/c.yaml",
        "audits/z.yaml",
    ]


def test_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "elsewhere.yaml").write_text("kind: A\n")
    files, issues = discover_spec_files(root, [tmp_path / "elsewhere.yaml"])
    assert files == []
    assert [i.code for i in issues] == ["path-outside-root"]
