"""A change to one method touches exactly that method's Job and its downstream, nothing else."""

from __future__ import annotations

from pathlib import Path

from k8s_helpers import STACK, copy_project, load_graph

from compiler import MARKER_FILE
from compiler.cli.main import main


def _compile(project: Path, out: Path) -> dict[str, str]:
    main(
        [
            "-C",
            str(project),
            "compile",
            "--out",
            str(out),
            "--store",
            STACK["store"]["uri"],
            "--no-validate",
        ]
    )
    return {p.name: p.read_text() for p in sorted(out.glob("*.yaml"))}


def test_changing_a_parameter_touches_only_that_method_and_downstream(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    before_graph = load_graph(project)
    before = _compile(project, tmp_path / "before")

    spec = project / "audits" / "analysis.yaml"
    text = spec.read_text()
    assert text.count("parameters: {threshold: 0.5}") == 1
    spec.write_text(text.replace("parameters: {threshold: 0.5}", "parameters: {threshold: 0.7}"))
    after_graph = load_graph(project)
    after = _compile(project, tmp_path / "after")

    changed_nodes = {n.name for n in after_graph if n.id != before_graph[n.name].id}
    assert changed_nodes == {"mean-score", "case"}, "the method and its downstream safety case"

    unchanged = {name for name in before if before[name] == after.get(name)}
    removed = set(before) - unchanged
    added = set(after) - unchanged

    def files_of(graph_nodes: dict[str, str]) -> set[str]:
        return {
            f"{kind}-{name}-{node_id[:10]}"
            for name, node_id in graph_nodes.items()
            for kind in ("configmap", "job")
        }

    old = files_of({n: before_graph[n].id for n in changed_nodes})
    new = files_of({n: after_graph[n].id for n in changed_nodes})
    assert {name[3:-5] for name in removed} == old
    assert {name[3:-5] for name in added} == new
    # The numbering is stable: the replaced files keep their positions.
    assert sorted(n[:2] for n in removed) == sorted(n[:2] for n in added)
    assert len(unchanged) == len(before) - 4


def test_compile_local_writes_one_json_per_node(tmp_path: Path) -> None:
    import json

    project = copy_project(tmp_path / "project")
    graph = load_graph(project)
    out = tmp_path / "graph"
    main(["-C", str(project), "compile", "--target", "local", "--out", str(out)])
    files = sorted(p for p in out.glob("*.json") if p.name != MARKER_FILE)
    assert len(files) == len(graph)
    for path, node in zip(files, graph, strict=True):
        document = json.loads(path.read_text())
        assert path.name.endswith(f"-{node.kind.lower()}-{node.name}.json")
        assert (document["kind"], document["name"], document["id"]) == (
            node.kind,
            node.name,
            node.id,
        )
        assert document["upstream"] == {graph[u].key: graph[u].id for u in node.upstream}
    assert json.loads(files[0].read_text())["canonical"]["scheme"] == "auditc-node-v1"
