"""`python -m runners.methods CONFIG.json [--result FILE]`: run one method.

Exit codes: 0 success; 1 the method failed (message on stderr); 2 the config is
invalid; 3 a bug (with a traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from schemas import AuditcError

from . import MethodConfig, run_method


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the method, and map the outcome to an exit code."""
    parser = argparse.ArgumentParser(prog="python -m runners.methods", description=__doc__)
    parser.add_argument("config", type=Path, help="MethodConfig as JSON")
    parser.add_argument("--result", type=Path, help="write the MethodResult here as JSON")
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        config = MethodConfig.model_validate_json(args.config.read_bytes())
    except (OSError, ValidationError) as exc:
        print(f"error: invalid method config {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_method(config)
    except AuditcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("internal error: this is a bug in auditc; please report it.", file=sys.stderr)
        return 3
    if args.result is not None:
        args.result.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return 0


def _configure_logging() -> None:
    level = os.environ.get("AUDITC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("traitlets", "asyncio", "matplotlib", "blib2to3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
