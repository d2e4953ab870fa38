"""`auditc export NODE --format inspect|eee|junit [--out PATH]`: results for other tools.

- `inspect`: an Evaluation with the Measurements and Scores computed from it, as an
  Inspect AI log (`inspect view` shows it; `inspect_ai.log.read_eval_log` reads it);
- `eee`: the same as Every Eval Ever records (aggregate JSON + instance-level JSON lines)
  in that project's datastore layout, `data/<evaluation>/<developer>/<model>/<uuid>.json`;
- `junit`: the gates of the safety cases of NODE (or computed from it) as JUnit XML.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import EXIT_CODES_HELP, Settings, check_store

if TYPE_CHECKING:
    from compiler.export import ExportTarget


@click.command(
    "export",
    epilog=EXIT_CODES_HELP,
    short_help="Export a node's results as an Inspect log, Every Eval Ever JSON or JUnit XML.",
)
@click.argument("node")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["inspect", "eee", "junit"]),
    required=True,
    help="inspect: Inspect AI log (JSON); eee: Every Eval Ever records; junit: gates as JUnit XML.",
)
@click.option(
    "--out",
    metavar="PATH",
    default=None,
    help="File or directory to write into (- for stdout: inspect, junit) "
    "[default: inspect: <time>_NODE_ID.json as Inspect names logs; junit: NODE-ID.xml; "
    "eee: eee/].",
)
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_EXPORT_STORE", "AUDITC_STORE"],
    callback=check_store,
    help="Store to read: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--organization",
    default="unspecified",
    show_default=True,
    help="eee: who ran the evaluation (source_metadata.source_organization_name).",
)
@click.option(
    "--relationship",
    type=click.Choice(["first_party", "third_party", "collaborative", "other"]),
    default="third_party",
    show_default=True,
    help="eee: the evaluator's relationship to the model's developer.",
)
@click.pass_obj
def command(
    settings: Settings,
    node: str,
    format_: str,
    out: str | None,
    store: str | None,
    organization: str,
    relationship: str,
) -> None:
    """Export NODE's results from the store in a format another tool reads.

    NODE is a name (`filter-on-identity-sentences`), `Kind/name`, or either with
    `@ID` (a prefix of a node id) to pick one run; by default the run that completed
    last. inspect and eee take an Evaluation and include the Measurements and the
    SafetyCase scores computed from it; junit takes any node and lists the gates of
    the safety cases that are NODE or computed from it. Every format carries the
    provenance: node ids, input file hashes, the model revision, the git commit.
    The paths written are printed on stdout.
    """
    from compiler.export import select_target
    from schemas import Store

    target = select_target(Store.open(store or settings.default_store, create=False), node)
    if format_ == "inspect":
        from compiler.export import inspect_log

        text = json.dumps(inspect_log(target), indent=2, ensure_ascii=False, default=str)
        _emit(text + "\n", out, _inspect_name(target))
    elif format_ == "junit":
        _emit(_junit(target), out, f"{target.root.name}-{target.root.id[:12]}.xml")
    else:
        _write_eee(target, Path(out or "eee"), organization, relationship)


def _junit(target: ExportTarget) -> str:
    from compiler.export import junit_xml
    from compiler.export._junit import gates_of

    return junit_xml(gates_of(target.store, target.index, target.cases), target.cases, target.store)


def _inspect_name(target: ExportTarget) -> str:
    """Inspect's own log file name (a timestamp first): `inspect view` lists only such JSON logs."""
    from datetime import UTC

    started = target.root.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%S")
    return f"{started}-00-00_{target.root.name}_{target.root.id[:12]}.json"


def _emit(text: str, out: str | None, default_name: str) -> None:
    """Write `text` to `out` atomically (a directory gets `default_name`; `-` is stdout)."""
    if out == "-":
        click.echo(text, nl=False)
        return
    path = Path(out) if out else Path(default_name)
    if out and (path.is_dir() or out.endswith(("/", os.sep))):
        path = path / default_name
    _write(path, text)
    click.echo(str(path))


def _write(path: Path, text: str) -> None:
    from schemas import UsageError

    if path.is_dir():
        raise UsageError(f"--out {path} is a directory; name a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_eee(target: ExportTarget, out: Path, organization: str, relationship: str) -> None:
    """The aggregate record and its instance file, in the Every Eval Ever datastore layout."""
    import hashlib

    from compiler.export import eee_records
    from compiler.export._eee import record_uuid

    aggregate, instances = eee_records(
        target,
        organization=organization,
        relationship=relationship,  # type: ignore[arg-type]
    )
    developer, _, model = aggregate["model_info"]["id"].partition("/")
    relative = f"data/{target.root.name}/{developer}/{model}"
    name = record_uuid(target.root.id)
    lines = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in instances)
    aggregate["detailed_evaluation_results"] = {
        "format": "jsonl",
        "file_path": f"{relative}/{name}_samples.jsonl",
        "hash_algorithm": "sha256",
        "checksum": hashlib.sha256(lines.encode()).hexdigest(),
        "total_rows": len(instances),
    }
    samples = out / relative / f"{name}_samples.jsonl"
    record = out / relative / f"{name}.json"
    _write(samples, lines)
    _write(record, json.dumps(aggregate, indent=2, ensure_ascii=False) + "\n")
    click.echo(str(record))
    click.echo(str(samples))
