"""auditc's vocabulary: resource models, store formats, errors. Imports nothing heavy.

Example:
    >>> from schemas import Evaluation
    >>> Evaluation.model_validate({"kind": "Evaluation", "name": "e",
    ...     "spec": {"service": "s", "dataset": "d", "concurrency": "auto"}}).spec.concurrency
    'auto'
"""

from ._adapters import *  # noqa: F403
from ._adapters import __all__ as _adapters_all
from ._aggregate import *  # noqa: F403
from ._aggregate import __all__ as _aggregate_all
from ._arrow import *  # noqa: F403
from ._arrow import __all__ as _arrow_all
from ._base import *  # noqa: F403
from ._base import __all__ as _base_all
from ._errors import *  # noqa: F403
from ._errors import __all__ as _errors_all
from ._extras import *  # noqa: F403
from ._extras import __all__ as _extras_all
from ._integrity import *  # noqa: F403
from ._integrity import __all__ as _integrity_all
from ._resources import *  # noqa: F403
from ._resources import __all__ as _resources_all
from ._store_access import *  # noqa: F403
from ._store_access import __all__ as _store_access_all
from ._store_format import *  # noqa: F403
from ._store_format import __all__ as _store_format_all

__version__ = "0.1.0"

__all__ = sorted(
    {
        *_adapters_all,
        *_aggregate_all,
        *_arrow_all,
        *_base_all,
        *_errors_all,
        *_extras_all,
        *_integrity_all,
        *_resources_all,
        *_store_access_all,
        *_store_format_all,
    }
)
