"""The public names of each package are listed once and importable from the package root."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["schemas", "compiler"])
def test_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    assert sorted(set(module.__all__)) == sorted(module.__all__), "duplicate names in __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_schemas_public_api_is_stable() -> None:
    import schemas

    expected = {
        "AnyResource",
        "Dataset",
        "Model",
        "Module",
        "InferenceService",
        "InferenceSession",
        "Evaluation",
        "Method",
        "ScoreSpec",
        "Gate",
        "Manifest",
        "ScoresFile",
        "ScoreValue",
        "Store",
        "AuditcError",
        "SpecError",
        "GraphError",
        "Issue",
        "node_path",
        "evaluation_output_schema",
        "dataset_schema",
        "TransformJSON",
        "Adapter",
    }
    assert expected <= set(schemas.__all__)


def test_schemas_import_is_light() -> None:
    """Importing schemas must not pull in heavy or layer-violating packages."""
    import subprocess
    import sys

    code = (
        "import sys, schemas; "
        "bad = [m for m in ('pyarrow', 'httpx', 'aiohttp', 'pulumi', 'papermill', 'compiler', 'runners') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
