"""Model back ends of the inference server: a Python callable, a transformers pipeline.

A predictor has two steps so that bad requests never reach the model:
`prepare(request)` checks one request object on the event loop (raising `BadRequest`,
answered with 400), and `predict(inputs)` runs the model on a list of prepared inputs
in the server's model thread and returns one JSON value per input.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from schemas import InferenceError, MissingDependencyError

from .._callables import CallableSourceError, import_callable
from ._config import ServerConfig

__all__ = ["BadRequest", "HuggingFacePredictor", "Predictor", "PythonPredictor", "make_predictor"]

logger = logging.getLogger(__name__)

JSON = Any


class BadRequest(Exception):
    """A request object the model cannot take; the server answers 400 with this message."""


class Predictor(Protocol):
    """What the server needs from a model back end."""

    description: str

    def load(self) -> None:
        """Load the model (slow; runs in a background thread while /health says 503)."""

    def prepare(self, request: JSON) -> Any:
        """Check one request object and return the model's input for it."""

    def predict(self, inputs: list[Any]) -> list[JSON]:
        """Run the model on prepared inputs; one JSON value per input, in order."""


def _jsonable(value: Any) -> JSON:
    # numpy scalars and arrays (and torch tensors) have .tolist(), which gives plain Python.
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value


class PythonPredictor:
    """Serves `Model.spec.python.callable`: a function of a list of inputs."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.model is not None and config.model.spec.python is not None
        self.source = config.model.spec.python
        self.python_paths = list(config.python_paths)
        self.description = f"python callable {self.source.callable}"
        self.argument = self.source.argument
        self.output = self.source.output
        self._fn: Callable[[list[Any]], Any] | None = None

    def load(self) -> None:
        """Import the callable, with the Module directories first on sys.path."""
        for path in reversed(self.python_paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        try:
            target: Any = import_callable(
                self.source.callable, module_dirs=self.python_paths, package=self.source.package
            )
        except CallableSourceError as exc:
            raise InferenceError(f"cannot load {self.source.callable!r}: {exc}") from None
        except ModuleNotFoundError as exc:
            hint = f" (install {self.source.package!r})" if self.source.package else ""
            raise InferenceError(
                f"cannot import {self.source.callable!r}: {exc}{hint}; "
                f"searched sys.path with modules {self.python_paths or 'none'}"
            ) from exc
        except Exception as exc:  # any import-time failure of user code
            raise InferenceError(
                f"cannot load {self.source.callable!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._fn = target

    def prepare(self, request: JSON) -> Any:
        """The request field `argument` (or the whole request when it is unset)."""
        if self.argument is None:
            return request
        if not isinstance(request, dict) or self.argument not in request:
            raise BadRequest(f"request has no field {self.argument!r} (the model's argument)")
        return request[self.argument]

    def predict(self, inputs: list[Any]) -> list[JSON]:
        """Call the function once on the whole batch."""
        assert self._fn is not None
        result = _jsonable(self._fn(inputs))
        try:
            values = list(result)
        except TypeError:
            raise InferenceError(
                f"{self.source.callable} returned a {type(result).__name__}, expected a list"
            ) from None
        if len(values) != len(inputs):
            raise InferenceError(
                f"{self.source.callable} returned {len(values)} values for {len(inputs)} inputs"
            )
        values = [_jsonable(v) for v in values]
        if self.output is not None:
            key = self.output
            return [{key: v} for v in values]
        return values


class HuggingFacePredictor:
    """Serves a transformers pipeline (`text-classification` or `text-generation`).

    A request is `{"inputs": "<text>"}`, optionally with `"parameters": {...}` passed to
    the pipeline call on top of the runner's `generate_kwargs`.
    """

    def __init__(self, config: ServerConfig) -> None:
        assert config.model is not None
        runner = config.service.spec.runner
        assert runner.kind == "huggingface"
        self.runner = runner
        self.spec = config.model.spec
        self.model_dir = config.model_dir
        source = self.spec.huggingface
        where = f"{source.repo}@{source.revision[:12]}" if source else str(config.model_dir)
        self.description = f"transformers {runner.task} pipeline of {where}"
        self._pipe: Any = None

    def _resolve_dir(self) -> str:
        source = self.spec.huggingface
        if source is None:
            if not self.model_dir or not os.path.isdir(self.model_dir):
                raise InferenceError(
                    f"model directory {self.model_dir!r} does not exist "
                    "(Model.spec.path must name a save_pretrained folder)"
                )
            return self.model_dir
        from huggingface_hub import snapshot_download

        try:
            path: str = snapshot_download(
                source.repo,
                revision=source.revision,
                allow_patterns=source.allow_patterns,
                ignore_patterns=source.ignore_patterns,
            )
        except Exception as exc:  # huggingface_hub raises many kinds (offline, 404, auth)
            offline = " (HF_HUB_OFFLINE is set: is it in the cache?)" if _offline() else ""
            raise InferenceError(
                f"cannot get model {source.repo}@{source.revision}{offline}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return path

    def _device(self) -> str:
        import torch

        wanted = self.runner.device
        if wanted == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise InferenceError(f"runner.device is {wanted!r} but no CUDA device is available")
        return wanted

    def load(self) -> None:
        """Download (or find in the cache) the snapshot and build the pipeline."""
        # The snapshot first: a missing model is reported before the slow torch import.
        path = self._resolve_dir()
        try:
            import transformers
        except ImportError as exc:
            raise MissingDependencyError(
                "the huggingface runner needs transformers and torch: "
                "pip install 'auditc[huggingface]'"
            ) from exc
        device = self._device()
        try:
            self._pipe = transformers.pipeline(
                self.runner.task, model=path, device=device, **self.runner.pipeline_kwargs
            )
        except Exception as exc:  # transformers raises OSError/ValueError/… for bad folders
            raise InferenceError(
                f"cannot build the {self.runner.task} pipeline from {path}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        logger.info("loaded %s on %s", self.description, device)

    def prepare(self, request: JSON) -> Any:
        """(text, parameters) of one request."""
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), str):
            raise BadRequest('request must be {"inputs": "<text>"} (a string field "inputs")')
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest('"parameters" must be an object')
        return request["inputs"], parameters

    def predict(self, inputs: list[Any]) -> list[JSON]:
        """Run the pipeline once per distinct `parameters`, batched."""
        import orjson

        groups: dict[bytes, list[int]] = {}
        for position, (_, parameters) in enumerate(inputs):
            key = orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)
            groups.setdefault(key, []).append(position)
        results: list[JSON] = [None] * len(inputs)
        for positions in groups.values():
            texts = [inputs[p][0] for p in positions]
            kwargs = {**self.runner.generate_kwargs, **inputs[positions[0]][1]}
            outputs = self._pipe(texts, batch_size=len(texts), **kwargs)
            for position, output in zip(positions, outputs, strict=True):
                results[position] = self._shape(output)
        return results

    def _shape(self, output: Any) -> JSON:
        if self.runner.task == "text-generation":
            texts = (
                [o["generated_text"] for o in output]
                if isinstance(output, list)
                else [output["generated_text"]]
            )
            return {"generated_text": texts[0] if len(texts) == 1 else texts}
        if isinstance(output, list):  # top_k given: every label with its score
            return {"labels": [_jsonable_dict(o) for o in output]}
        return _jsonable_dict(output)


def _jsonable_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in value.items()}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def make_predictor(config: ServerConfig) -> Predictor:
    """The predictor for the service's runner kind (nothing is loaded yet).

    Raises:
        InferenceError: the runner kind is not one auditc serves itself, or its Model
            does not fit it.
    """
    runner = config.service.spec.runner
    service = f"InferenceService/{config.service.name}"
    if runner.kind not in ("python", "huggingface"):
        raise InferenceError(
            f"{service}: runner {runner.kind!r} is not served by auditc's inference server "
            "(only 'python' and 'huggingface' are; 'external' services are called directly)"
        )
    if config.model is None:
        raise InferenceError(f"{service}: the {runner.kind!r} runner needs its Model in the config")
    spec = config.model.spec
    if runner.kind == "python":
        if spec.python is None:
            raise InferenceError(
                f"{service}: the 'python' runner needs a Model with spec.python "
                f"(Model/{config.model.name} has none)"
            )
        return PythonPredictor(config)
    if spec.huggingface is None and config.model_dir is None:
        raise InferenceError(
            f"{service}: the 'huggingface' runner needs a Model with spec.huggingface, "
            f"or spec.path with model_dir set (Model/{config.model.name} has neither)"
        )
    return HuggingFacePredictor(config)
