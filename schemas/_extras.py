"""Optional dependencies by role: which extra installs what, and the error when one is missing.

`pip install auditc` installs the core only (pydantic, PyYAML, click): enough for
`validate`, `graph`, `plan`, `schema` and `compile --target local`, what a reviewer or a
fork's pull request runs. Everything else comes with an extra named after its role; a
command that needs one checks for it first and says which to install, with exit code 2.

Example:
    >>> from schemas import missing_modules
    >>> missing_modules("results") in ([], ["pyarrow"], ["jinja2"])   # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib.util
from typing import Literal

from ._errors import MissingDependencyError

__all__ = [
    "EXTRA_MODULES",
    "Extra",
    "extra_for_module",
    "install_hint",
    "missing_extra_error",
    "missing_modules",
    "require_extra",
]

Extra = Literal["results", "run", "notebooks", "huggingface", "kubernetes", "s3", "sigstore"]

EXTRA_MODULES: dict[Extra, tuple[str, ...]] = {
    "results": ("pyarrow", "numpy", "scipy", "statsmodels", "jinja2", "matplotlib", "cryptography"),
    "run": (
        "pyarrow",
        "numpy",
        "scipy",
        "aiohttp",
        "httpx",
        "uvicorn",
        "starlette",
        "orjson",
        "rich",
        "psutil",
    ),
    "notebooks": ("papermill", "nbconvert", "nbformat", "ipykernel", "matplotlib"),
    "huggingface": ("huggingface_hub", "transformers", "torch"),
    "kubernetes": (
        "pyarrow",
        "pulumi",
        "pulumi_kubernetes",
        "kubernetes_validate",
        "packaging",
        "kubernetes",
    ),
    "s3": ("pyarrow",),
    "sigstore": ("sigstore",),
}
"""The import names each extra of the `auditc` distribution provides (pyproject.toml)."""


def install_hint(extra: str) -> str:
    """The command that installs an extra: `pip install 'auditc[run]'`."""
    return f"pip install 'auditc[{extra}]'"


def missing_modules(extra: Extra) -> list[str]:
    """The modules of `extra` that cannot be imported here (found without importing them)."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def missing_extra_error(extra: Extra, what: str, missing: list[str]) -> MissingDependencyError:
    """The error for `what` (a command, a runner) when `extra`'s modules are missing."""
    named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return MissingDependencyError(
        f"{what} needs the '{extra}' extra ({named} not installed): {install_hint(extra)}"
    )


def require_extra(extra: Extra, what: str) -> None:
    """Check that every module of `extra` is installed.

    Args:
        extra: the extra `what` needs.
        what: what needs it, for the message (`auditc report`, `Method/case (a notebook)`).

    Raises:
        MissingDependencyError: a module is missing (exit code 2); the message names the
            extra and the `pip install` command.
    """
    missing = missing_modules(extra)
    if missing:
        raise missing_extra_error(extra, what, missing)


def extra_for_module(module: str, prefer: tuple[Extra, ...] = ()) -> Extra | None:
    """The extra that installs top-level module `module`, trying `prefer` first."""
    top = module.split(".")[0]
    for extra in (*prefer, *EXTRA_MODULES):
        if top in EXTRA_MODULES[extra]:
            return extra
    return None
