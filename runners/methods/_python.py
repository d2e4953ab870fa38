"""Running a Python-function method: Arrow inputs in, a Measurement out."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from runners.analysis import as_table, describe_type
from schemas import MethodError, Store

from .._callables import CallableSourceError, import_callable
from ._config import MethodConfig, MethodResult
from ._measurement import MeasurementWriter

__all__ = ["run_function"]

logger = logging.getLogger(__name__)


def run_function(config: MethodConfig, store: Store) -> MethodResult:
    """Call the method's function with its inputs and parameters; write what it returns.

    The function gets each input as a `pyarrow.dataset.Dataset` (keyword = input name)
    and every parameter as a keyword argument. It returns or yields Arrow data: a Table,
    RecordBatches, an iterable of them, or a pandas/polars DataFrame.

    Raises:
        MethodError: the function cannot be imported, raises, or returns data that does
            not fit `spec.output`.
    """
    spec = config.method.spec
    target = spec.implementation.python
    assert target is not None  # MethodConfig checked the implementation kind
    function = _import_callable(config.method.name, target, config.python_paths)
    kwargs = _arguments(config)
    writer = MeasurementWriter(config.method.name, store, spec.output)
    where = f"Method/{config.method.name}: {target}"
    result = _guarded(where, lambda: function(**kwargs))
    for table in _tables(where, result):
        writer.add(table)
    rows = writer.close()
    logger.info("Method/%s wrote %d rows", config.method.name, rows)
    return MethodResult(rows=rows)


def _import_callable(method: str, target: str, module_dirs: list[str]) -> Callable[..., Any]:
    """Import the method's function, only from its Modules (see `runners.import_callable`)."""
    module_name, _, attribute = target.partition(":")
    try:
        return import_callable(target, module_dirs=module_dirs)
    except CallableSourceError as exc:
        raise MethodError(f"Method/{method}: {exc}") from None
    except ImportError as exc:
        raise MethodError(
            f"Method/{method}: cannot import module {module_name!r} for {target!r}: {exc} "
            "(is it in one of the method's modules?)"
        ) from exc
    except AttributeError as exc:
        raise MethodError(f"Method/{method}: cannot get {attribute!r}: {exc}") from None
    except Exception as exc:
        raise _user_error(f"Method/{method}: importing {module_name!r}", exc) from exc


def _arguments(config: MethodConfig) -> dict[str, Any]:
    parameters = config.method.spec.parameters
    clash = sorted(set(parameters) & set(config.inputs))
    if clash:
        raise MethodError(
            f"Method/{config.method.name}: {', '.join(clash)} is both an input and a parameter"
        )
    datasets = {
        name: Store.open(ref.uri, create=False).open_dataset("")
        for name, ref in config.inputs.items()
    }
    return {**datasets, **parameters}


def _guarded(where: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except MethodError:
        raise
    except Exception as exc:
        raise _user_error(where, exc) from exc


def _tables(where: str, result: Any) -> Iterator[pa.Table]:
    """The tables in what the function returned, pulling generators under a guard."""
    table = as_table(result)
    if table is not None:
        yield table
        return
    if result is None:
        raise MethodError(f"{where} returned None; expected Arrow data (a Table or RecordBatches)")
    if isinstance(result, str | bytes | Mapping) or not hasattr(result, "__iter__"):
        raise MethodError(
            f"{where} returned a {describe_type(result)}; expected a pyarrow Table, "
            "RecordBatches, an iterable of them, or a DataFrame"
        )
    items = iter(result)
    while True:
        item = _guarded(where, lambda: next(items, _END))
        if item is _END:
            return
        table = as_table(item)
        if table is None:
            raise MethodError(
                f"{where} yielded a {describe_type(item)}; expected a pyarrow Table or RecordBatch"
            )
        yield table


_END = object()


def _user_error(where: str, exc: BaseException) -> MethodError:
    """A MethodError for an exception from user code; its traceback goes to the log."""
    logger.error("%s raised:\n%s", where, "".join(traceback.format_exception(exc)).rstrip())
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return MethodError(f"{where} raised {type(exc).__name__}: {exc}{at}")
