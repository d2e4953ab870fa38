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

import click
from pydantic import ValidationError

from .._entry import (
    EXIT_FAILED,
    InvalidConfigError,
    configure_logging,
    describe_invalid_config,
    error_boundary,
    keep_pandas_out,
    load_config,
    log_level_option,
    result_option,
    run_entry,
    write_result,
)
from . import EvaluationConfig, run_evaluation
from ._redact import SecretFilter, redact

EXIT_OK = 0


def _load_config(path: str, shard: str | None) -> EvaluationConfig:
    config = load_config(path, EvaluationConfig)
    if shard is None and "JOB_COMPLETION_INDEX" in os.environ:
        # A pod of an Indexed Job: the completion index is the shard.
        shard = f"{os.environ['JOB_COMPLETION_INDEX']}/{config.evaluation.spec.shards}"
    if shard is None:
        return config
    match = re.fullmatch(r"(\d+)/(\d+)", shard)
    if match is None:
        raise click.BadParameter(f"expected i/n, got {shard!r}", param_hint="--shard")
    try:
        return EvaluationConfig.model_validate(
            {**config.model_dump(), "shard_index": int(match[1]), "shard_count": int(match[2])}
        )
    except ValidationError as exc:
        raise InvalidConfigError(describe_invalid_config(path, "EvaluationConfig", exc)) from exc


def _redact_logs(config: EvaluationConfig) -> str | None:
    """Install a filter that keeps the config's API key out of every log line; the key."""
    secret = os.environ.get(config.api_key_env) if config.api_key_env else None
    if secret:
        for handler in logging.getLogger().handlers:
            handler.addFilter(SecretFilter(secret))
    return secret or None


@click.command()
@click.argument("config", metavar="CONFIG.json")
@click.option("--shard", metavar="i/n", help="Process shard i of n (default: the config's).")
@result_option
@log_level_option
def command(config: str, shard: str | None, result_path: str | None, log_level: str) -> int:
    """Run one shard of the evaluation that CONFIG.json (a runners.evaluation.EvaluationConfig) describes."""
    configure_logging(log_level)
    evaluation_config = _load_config(config, shard)
    secret = _redact_logs(evaluation_config)
    with error_boundary("the evaluation client", lambda text: redact(text, secret)):
        result = run_evaluation(evaluation_config)
    write_result(result_path, result)
    summary = (
        f"{result.rows} rows ({result.resumed_rows} resumed), {result.errors} errors, "
        f"{result.requests} requests, {result.retries} retries in {result.duration_s:.1f} s"
    )
    if result.status == "failed":
        click.echo(f"error: {redact(result.message or '', secret)} ({summary})", err=True)
        return EXIT_FAILED
    click.echo(f"evaluation complete: {summary}", err=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run one shard of an evaluation; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.evaluation")


if __name__ == "__main__":
    keep_pandas_out()
    sys.exit(main())
