"""The helper API that methods use: inputs, parameters, scores, statistics, display helpers.

The method runner writes an analysis config and points `AUDITC_ANALYSIS_CONFIG` at it
before it calls a Python function or starts a notebook kernel.

Example (a safety-case notebook):
    >>> from runners import analysis                                   # doctest: +SKIP
    >>> fpr = analysis.input("fpr")                                    # a pyarrow.Table
    >>> threshold = analysis.parameter("threshold")
    >>> s = analysis.score("max_fpr_gap", 0.12, text="…", instances={0: 1.0, 1: 0.0})
    >>> analysis.score_card(s)                                         # an HTML card
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._config import *  # noqa: F403
from ._config import __all__ as _config_all

if TYPE_CHECKING:
    from ._api import *  # noqa: F403
    from ._display import *  # noqa: F403
    from ._intervals import *  # noqa: F403
    from ._scores import *  # noqa: F403
    from ._stats import *  # noqa: F403
    from ._tables import *  # noqa: F403

# Loaded on first use: they import pyarrow (and IPython), which the `auditc` process
# must not pay for when it only builds method configs.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "EXPORTED_SCORES_FILE",
            "INSTANCES_DIR",
            "config",
            "input",
            "input_dataset",
            "input_uri",
            "output_dir",
            "parameter",
            "read_exported_scores",
            "score",
        ],
        "._api",
    ),
    **dict.fromkeys(["conclusion", "examples", "score_card", "table", "title_card"], "._display"),
    **dict.fromkeys(
        [
            "INSTANCE_SCHEMA",
            "check_reproduces",
            "check_score",
            "check_scores",
            "instance_arrays",
            "instances_table",
        ],
        "._scores",
    ),
    **dict.fromkeys(["DEFAULT_CONFIDENCE", "given_interval", "score_interval"], "._intervals"),
    **dict.fromkeys(["Interval", "mean_interval", "proportion_interval"], "._stats"),
    **dict.fromkeys(["as_table", "describe_type"], "._tables"),
}

__all__ = sorted({*_config_all, *_LAZY})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
