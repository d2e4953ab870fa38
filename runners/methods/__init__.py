"""The method runner: Python functions → Measurements, notebooks → SafetyCases.

`python -m runners.methods CONFIG.json [--result FILE]` runs one method (what the local
backend spawns and a Kubernetes method Job runs); `run_method` does the same in-process.

Example:
    >>> from runners.methods import MethodConfig, run_method       # doctest: +SKIP
    >>> run_method(MethodConfig.model_validate_json(open("cfg.json").read())).rows
"""

from ._config import MethodConfig, MethodInputRef, MethodResult
from ._run import run_method

__all__ = ["MethodConfig", "MethodInputRef", "MethodResult", "run_method"]
