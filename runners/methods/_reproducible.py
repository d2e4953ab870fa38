"""The executed notebook, made the same bytes for the same results.

Papermill records when each cell ran, where the notebook and its inputs were, and
gives its injected-parameters cell a random id (which nbconvert copies into the HTML);
cells of a notebook saved without ids get random ones when it is read.
None of that is a result: timings are in the node's manifest and log, and the store's
location is not part of the audit. So before the notebook is stored and rendered,
timings go, the injected cell gets a fixed id, and local paths become placeholders —
the same commit gives the same `notebook.ipynb` and `index.html` in any store.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["STORE_PLACEHOLDER", "normalise_notebook", "store_root"]

STORE_PLACEHOLDER = "<store>"
OUTPUT_PLACEHOLDER = "<output dir>"
_TIMES = ("start_time", "end_time", "duration")
_INJECTED = "injected-parameters"


def store_root(node_uri: str) -> str:
    """The store root of a node URI (`…/<kind>/<name>/<id>[?query]` → `…`)."""
    return node_uri.partition("?")[0].rstrip("/").rsplit("/", 3)[0]


def normalise_notebook(path: Path, *, source: Path, stores: list[str], output_dir: str) -> None:
    """Rewrite an executed notebook without timings, random ids or local paths.

    Args:
        path: The executed notebook, rewritten in place.
        source: The method's notebook: cell ids it has are kept, others are numbered.
        stores: Store roots the notebook's inputs came from: shown as `<store>`.
        output_dir: The notebook's output directory: shown as `<output dir>`.
    """
    notebook = json.loads(path.read_text("utf-8"))
    known = _cell_ids(source)
    papermill = notebook.get("metadata", {}).get("papermill", {})
    for key in (*_TIMES, "input_path", "output_path"):
        papermill.pop(key, None)
    for number, cell in enumerate(notebook.get("cells", [])):
        metadata = cell.setdefault("metadata", {})
        metadata.pop("execution", None)
        for key in _TIMES:
            metadata.get("papermill", {}).pop(key, None)
        if _INJECTED in metadata.get("tags", []):
            cell["id"] = _INJECTED
        elif "id" in cell and cell["id"] not in known:
            cell["id"] = f"cell-{number}"
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    replacements = {root: STORE_PLACEHOLDER for root in stores if root}
    replacements[output_dir] = OUTPUT_PLACEHOLDER
    for old in sorted(replacements, key=len, reverse=True):
        text = text.replace(json.dumps(old)[1:-1], replacements[old])
    path.write_text(text, "utf-8")


def _cell_ids(notebook: Path) -> set[str]:
    try:
        cells = json.loads(notebook.read_text("utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {cell["id"] for cell in cells if isinstance(cell, dict) and "id" in cell}
