"""The method runner: Python functions → Measurements, notebooks → SafetyCases.

`python -m runners.methods CONFIG.json [--result FILE]` runs one method (what the local
backend spawns and a Kubernetes method Job runs); `run_method` does the same in-process.

Example:
    >>> from runners.methods import MethodConfig, run_method       # doctest: +SKIP
    >>> run_method(MethodConfig.model_validate_json(open("cfg.json").read())).rows
"""

from typing import TYPE_CHECKING, Any

from ._config import MethodConfig, MethodInputRef, MethodResult

if TYPE_CHECKING:
    from ._run import run_method

__all__ = ["MethodConfig", "MethodInputRef", "MethodResult", "run_method"]


def __getattr__(name: str) -> Any:
    # The backend builds MethodConfigs in the `auditc` process; the runner itself
    # (pyarrow, papermill, nbconvert) loads only where a method actually runs.
    if name == "run_method":
        from ._run import run_method

        return run_method
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
