"""Helpers for method-runner tests: methods, module names, configs and notebooks."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pyarrow as pa

from runners.methods import MethodConfig, MethodInputRef
from schemas import Method

PHRASES = pa.table(
    {
        "_index_": pa.array([0, 1, 2, 3, 4, 5], pa.int64()),
        "text": ["a", "b", "c", "d", "e", "f"],
        "group": ["x", "x", "x", "y", "y", "y"],
        "score": [0.1, 0.7, 0.2, 0.9, 0.8, 0.3],
    }
)


def make_method(name: str, spec: dict[str, Any]) -> Method:
    spec.setdefault("inputs", {"phrases": "phrases"})
    return Method.model_validate({"kind": "Method", "name": name, "spec": spec})


def module_name(directory: Path) -> str:
    return (directory / "NAME").read_text(encoding="utf-8")


def python_config(store: Path, method: Method, directory: Path, node: str = "m1") -> MethodConfig:
    return MethodConfig(
        method=method,
        inputs={"phrases": MethodInputRef(kind="Dataset", uri=str(store / "dataset/phrases/d1"))},
        python_paths=[str(directory)],
        output_uri=str(store / "method" / method.name / node),
    )


def write_notebook(path: Path, *cells: str, parameters: str = "threshold = 0.0") -> Path:
    """A notebook: a `parameters`-tagged cell, then code cells (`# md` cells are Markdown)."""
    notebook = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    notebook.cells = [first] + [
        nbformat.v4.new_markdown_cell(c[4:])
        if c.startswith("# md")
        else nbformat.v4.new_code_cell(textwrap.dedent(c))
        for c in cells
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path
