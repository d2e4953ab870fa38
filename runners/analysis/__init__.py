"""The helper API that methods use: inputs, parameters, scores, and display helpers.

The method runner writes an analysis config and points `AUDITC_ANALYSIS_CONFIG` at it
before it calls a Python function or starts a notebook kernel.

Example (a safety-case notebook):
    >>> from runners import analysis                                   # doctest: +SKIP
    >>> fpr = analysis.input("fpr")                                    # a pyarrow.Table
    >>> threshold = analysis.parameter("threshold")
    >>> s = analysis.score("max_fpr_gap", 0.12, text="…", instances={0: 1.0, 1: 0.0})
    >>> analysis.score_card(s)                                         # an HTML card
"""

from ._api import *  # noqa: F403
from ._api import __all__ as _api_all
from ._config import *  # noqa: F403
from ._config import __all__ as _config_all
from ._display import *  # noqa: F403
from ._display import __all__ as _display_all
from ._scores import *  # noqa: F403
from ._scores import __all__ as _scores_all
from ._tables import *  # noqa: F403
from ._tables import __all__ as _tables_all

__all__ = sorted({*_api_all, *_config_all, *_display_all, *_scores_all, *_tables_all})
