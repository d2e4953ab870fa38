"""`python -m runners.fetch inputs|commit|wait|model CONFIG.json`: the pod-side steps of the Kubernetes backend.

Exit codes (docs/contracts.md): 0 success, 1 the step failed, 2 invalid config or an
input that is missing or does not match its hash, 3 a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .._entry import configure_logging, error_boundary
from ._commit import CommitConfig, commit_node
from ._fetch import FetchConfig, fetch_inputs
from ._model import ModelFetchConfig, prefetch_model
from ._wait import WaitConfig, wait_for_inputs

EXIT_INVALID = 2


def _load(model: type[BaseModel], path: str) -> BaseModel:
    try:
        return model.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        print(f"error: cannot read config {path}: {exc}", file=sys.stderr)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        print(f"error: {path}: {where}: {first['msg']}", file=sys.stderr)
    sys.exit(EXIT_INVALID)


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m runners.fetch", description=__doc__)
    parser.add_argument("step", choices=["inputs", "commit", "wait", "model"])
    parser.add_argument("config", help="the step's JSON config")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        with error_boundary("runners.fetch"):
            if args.step == "inputs":
                result = fetch_inputs(_load(FetchConfig, args.config))  # type: ignore[arg-type]
                print(f"fetched {result.files} files ({result.bytes} bytes)", file=sys.stderr)
            elif args.step == "wait":
                waited = wait_for_inputs(_load(WaitConfig, args.config))  # type: ignore[arg-type]
                print(f"inputs committed (waited {waited:.0f} s)", file=sys.stderr)
            elif args.step == "model":
                path = prefetch_model(_load(ModelFetchConfig, args.config))  # type: ignore[arg-type]
                print(f"model in the cache: {path}", file=sys.stderr)
            else:
                manifest = commit_node(_load(CommitConfig, args.config))  # type: ignore[arg-type]
                print(f"committed {manifest.kind}/{manifest.name} {manifest.id}", file=sys.stderr)
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
