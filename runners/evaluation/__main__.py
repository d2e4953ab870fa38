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
from pathlib import Path

import click
from pydantic import ValidationError

from .._entry import EXIT_FAILED, configure_logging, describe_invalid_config, error_boundary
from . import EvaluationConfig, EvaluationResult, run_evaluation
from ._redact import SecretFilter, redact

EXIT_OK = 0


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
        raise click.UsageError(describe_invalid_config(path, "EvaluationConfig", exc)) from exc
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
    configure_logging(log_level)
    evaluation_config = _load_config(config, shard)
    secret = _redact_logs(evaluation_config)
    with error_boundary("the evaluation client", lambda text: redact(text, secret)):
        result = run_evaluation(evaluation_config)
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
