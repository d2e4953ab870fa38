"""Content-addressed inputs on a volume store: directory trees round-trip with the compiler's hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from k8s_helpers import copy_project, load_graph

from compiler import hash_path
from compiler.backends.kubernetes import graph_inputs, push_inputs
from runners.fetch import FetchConfig, FetchItem, InputError, TreeListing, fetch_inputs, tree_key
from schemas import Store


def _files(root: Path) -> dict[str, bytes]:
    """Every file below `root`, following symlinked directories (as the hash does)."""
    found = {}
    for current, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(current) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def test_directory_trees_round_trip(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    module = project / "audits" / "modules" / "metrics"
    (module / "sub").mkdir()
    (module / "sub" / "helpers.py").write_text("X = 1\n")
    (project / "audits" / "shared").mkdir()
    (project / "audits" / "shared" / "util.py").write_text("Y = 2\n")
    (module / "linked").symlink_to(project / "audits" / "shared", target_is_directory=True)
    graph = load_graph(project)
    digest = graph["metrics"].files["audits/modules/metrics"]
    assert digest == hash_path(module, root=project)

    store_dir = tmp_path / "store"
    first = push_inputs(graph, str(store_dir))
    assert [i.path for i in first.uploaded] == [i.path for i in graph_inputs(graph)]
    again = push_inputs(graph, str(store_dir))
    assert again.uploaded == [] and len(again.present) == 4 and again.bytes == 0
    listing = TreeListing.model_validate_json(Store.open(store_dir).read_bytes(tree_key(digest)))
    assert listing.digest() == digest
    assert ("linked/", hash_path(project / "audits" / "shared")) in listing.entries

    dest = tmp_path / "pod" / "inputs" / "metrics"
    item = FetchItem(path="audits/modules/metrics", sha256=digest, type="dir", dest=str(dest))
    result = fetch_inputs(FetchConfig(store=str(store_dir), items=[item]))
    expected = _files(module)
    assert _files(dest) == expected and result.files == len(expected)


def test_a_listing_that_does_not_hash_to_its_name_is_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    graph = load_graph(project)
    store_dir = tmp_path / "store"
    push_inputs(graph, str(store_dir))
    digest = graph["metrics"].files["audits/modules/metrics"]
    store = Store.open(store_dir)
    listing = TreeListing.model_validate_json(store.read_bytes(tree_key(digest)))
    forged = TreeListing(entries=[*listing.entries, ("extra.py", listing.entries[0][1])])
    store.write_bytes(forged.model_dump_json().encode(), tree_key(digest))
    item = FetchItem(
        path="audits/modules/metrics", sha256=digest, type="dir", dest=str(tmp_path / "d")
    )
    with pytest.raises(InputError, match=f"expected {digest}") as info:
        fetch_inputs(FetchConfig(store=str(store_dir), items=[item]))
    assert info.value.exit_code == 2


def test_a_changed_file_is_not_pushed(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    graph = load_graph(project)
    (project / "audits" / "data" / "phrases.jsonl").write_text('{"text": "edited", "label": 1}\n')
    from schemas import BackendError

    with pytest.raises(BackendError, match="changed since the specs were loaded"):
        push_inputs(graph, str(tmp_path / "store"))
