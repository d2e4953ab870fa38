"""`python -m runners.evaluation CONFIG.json [--shard i/n] [--result FILE]`.

Exit codes (docs/contracts.md): 0 complete, 1 the evaluation failed (its message on
stderr), 2 invalid config or arguments, 3 a bug, 4 the service was not ready within
`timeouts.ready` (only with `ready_url` in the config).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from pathlib import Path

import click
from pydantic import ValidationError

from schemas import AuditcError, format_loc

from . import EvaluationConfig, EvaluationResult, run_evaluation
from ._redact import SecretFilter, redact

EXIT_OK, EXIT_FAILED, EXIT_INTERNAL = 0, 1, 3


def _describe(path: str, exc: ValidationError) -> str:
    n = exc.error_count()
    lines = [f"  {format_loc(tuple(e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()[:10]]
    more = [f"  … and {n - 10} more"] if n > 10 else []
    return "\n".join(
        [f"{path}: not a valid EvaluationConfig ({n} error{'s' if n != 1 else ''}):", *lines, *more]
    )


def _load_config(path: str, shard: str | None) -> EvaluationConfig:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        config = EvaluationConfig.model_validate_json(raw)
        if shard is None and "JOB_COMPLETION_INDEX" in os.environ:
            # A pod of an Indexed Job: the completion index is the shard.
            shard = f"{os.environ['JOB_COMPLETION_INDEX']}/{config.evaluation.spec.shards}"
        if shard is not None:
            match = re.fullmatch(r"(\d+)/(\d+)", shard)
            if match is None:
                raise click.BadParameter(f"expected i/n, got {shard!r}", param_hint="--shard")
            config = EvaluationConfig.model_validate(
                {
                    **config.model_dump(),
                    "shard_index": int(match[1]),
                    "shard_count": int(match[2]),
                }
            )
    except ValidationError as exc:
        raise click.UsageError(_describe(path, exc)) from exc
    return config


def _redact_logs(config: EvaluationConfig) -> str | None:
    """Install a filter that keeps the config's API key out of every log line; the key."""
    secret = os.environ.get(config.api_key_env) if config.api_key_env else None
    if secret:
        for handler in logging.getLogger().handlers:
            handler.addFilter(SecretFilter(secret))
    return secret or None


def _write_result(path: str | None, result: EvaluationResult) -> None:
    if path is not None:
        Path(path).write_text(result.model_dump_json(indent=2))


@click.command()
@click.argument("config", metavar="CONFIG.json")
@click.option("--shard", metavar="i/n", help="Process shard i of n (default: the config's).")
@click.option("--result", "result_path", metavar="FILE", help="Write the EvaluationResult as JSON.")
@click.option("--log-level", default="INFO", envvar="AUDITC_LOG_LEVEL", show_default=True)
def command(config: str, shard: str | None, result_path: str | None, log_level: str) -> None:
    """Run one shard of the evaluation that CONFIG.json (a runners.evaluation.EvaluationConfig) describes."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    evaluation_config = _load_config(config, shard)
    secret = _redact_logs(evaluation_config)
    try:
        result = run_evaluation(evaluation_config)
    except AuditcError as exc:
        click.echo(f"error: {redact(str(exc), secret)}", err=True)
        sys.exit(exc.exit_code or EXIT_FAILED)
    except Exception:
        click.echo(redact(traceback.format_exc(), secret), err=True)
        click.echo("internal error in the evaluation client (a bug: please report it)", err=True)
        sys.exit(EXIT_INTERNAL)
    _write_result(result_path, result)
    summary = (
        f"{result.rows} rows ({result.resumed_rows} resumed), {result.errors} errors, "
        f"{result.requests} requests, {result.retries} retries in {result.duration_s:.1f} s"
    )
    if result.status == "failed":
        click.echo(f"error: {redact(result.message or '', secret)} ({summary})", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"evaluation complete: {summary}", err=True)
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    command()
