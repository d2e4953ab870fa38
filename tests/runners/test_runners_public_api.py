"""`runners` and each of its subpackages list their public names once, and they are exactly
their public surface.

As httpx tests its exported members: every name in `__all__` resolves (lazy names too), and
nothing public sits in a package namespace without being listed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import runners

SUBPACKAGES = sorted(
    info.name
    for info in pkgutil.iter_modules(runners.__path__)
    if info.ispkg and not info.name.startswith("_")
)
PACKAGES = ["runners", *(f"runners.{name}" for name in SUBPACKAGES)]


REEXPORTED = {("methods", "MethodInputRef"): "runners.analysis"}
"""Names a package deliberately hands on from another runner package: where they live."""


def _is_incidental(value: object) -> bool:
    """Imports a package needs for itself (modules, typing helpers), not public API."""
    return inspect.ismodule(value) or getattr(value, "__module__", None) in ("typing", "__future__")


@pytest.mark.parametrize("module", PACKAGES)
def test_all_is_the_public_surface(module: str) -> None:
    package = importlib.import_module(module)
    name = module.removeprefix("runners").lstrip(".")
    exported = list(package.__all__)
    assert exported, f"{module} exports nothing"
    assert len(set(exported)) == len(exported), "duplicate names in __all__"
    unresolved = [n for n in exported if not hasattr(package, n)]
    assert unresolved == []
    listed = set(exported)
    unlisted = sorted(
        n
        for n, value in vars(package).items()
        if not n.startswith("_")
        and n not in listed
        and not _is_incidental(value)
        and n not in ("annotations", "TYPE_CHECKING")
    )
    assert unlisted == [], f"{module} has public names missing from __all__"
    for n in exported:
        value = getattr(package, n)
        origin = getattr(value, "__module__", None)
        if origin is not None and (inspect.isclass(value) or inspect.isfunction(value)):
            home = REEXPORTED.get((name, n), module)
            assert origin.startswith(home), f"{n} comes from {origin}"


def test_the_root_exports_exactly_these() -> None:
    """The root package's surface is deliberate: what the steps and the compiler share."""
    assert set(runners.__all__) == {
        "PYCACHE_ENV",
        "RUNNER_IMAGE_PYCACHE",
        "CallableSourceError",
        "default_bytecode_cache",
        "import_callable",
        "private_bytecode_cache",
    }
