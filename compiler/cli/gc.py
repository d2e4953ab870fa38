"""`auditc gc [--dry-run] [--keep-ref REF]`: remove store nodes that no spec references."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import EXIT_CODES_HELP, Settings, check_store, text_json_format_option

if TYPE_CHECKING:
    from compiler import Graph
    from compiler._gc import GcNode, GcPlan
    from schemas import Store


@click.command(
    "gc", epilog=EXIT_CODES_HELP, short_help="Remove store nodes that no spec references."
)
@click.option(
    "--store",
    metavar="URI",
    callback=check_store,
    help="Store to clean [default: <project>/.auditc].",
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be removed, and how much; remove nothing."
)
@click.option(
    "--keep-ref",
    "keep_refs",
    multiple=True,
    metavar="GIT_REF",
    help="Also keep the nodes of the specs at this git ref (e.g. main). Repeatable.",
)
@click.option(
    "--min-age",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Keep unreferenced nodes written to more recently than this (a run may be writing them).",
)
@text_json_format_option("people")
@click.pass_obj
def command(
    settings: Settings,
    store: str | None,
    dry_run: bool,
    keep_refs: tuple[str, ...],
    min_age: float,
    format_: str,
) -> None:
    """Remove the node directories of the store that no spec references.

    A node is kept when it belongs to the graph of the project's specs (all of
    audits/, valid as a whole), or of the specs at a --keep-ref; every other
    Dataset, Evaluation and Method directory (complete, failed or unfinished) is
    removed, manifest first. Nodes written to in the last --min-age seconds and
    anything outside the node layout (such as inputs/) are left alone. Removing takes
    the store's writer lock, so it never runs while `auditc run` writes the store. Use
    --dry-run first: it lists each node with its size.
    """
    from compiler import DEFAULT_SPEC_DIR, load_scoped_graph, load_scoped_graph_at
    from schemas import Store

    spec_dir = settings.project_dir / DEFAULT_SPEC_DIR
    graphs = [load_scoped_graph(settings.project_dir, [spec_dir], given=False).graph]
    graphs += [
        load_scoped_graph_at(settings.project_dir, ref, [spec_dir], given=False)
        for ref in keep_refs
    ]
    opened = Store.open(store or settings.default_store, create=False)
    if dry_run:
        _collect(settings, opened, graphs, min_age, format_, store, keep_refs, dry_run=True)
        return
    from compiler.backends.local import store_writer_lock

    # Planned and removed under the writer lock: a run writing this store meanwhile would
    # see its nodes vanish, and one started after the plan would not be in it.
    with store_writer_lock(opened):
        _collect(settings, opened, graphs, min_age, format_, store, keep_refs, dry_run=False)


def _collect(
    settings: Settings,
    opened: Store,
    graphs: list[Graph],
    min_age: float,
    format_: str,
    store: str | None,
    keep_refs: tuple[str, ...],
    *,
    dry_run: bool,
) -> None:
    from compiler._gc import plan_gc, remove_nodes

    plan = plan_gc(opened, graphs, min_age=min_age)
    if store is None:  # say `.auditc`, not where the project happens to live
        plan = dataclasses.replace(plan, store=Path(settings.default_store).name)
    if format_ == "json":
        click.echo(json.dumps(_as_json(plan, dry_run), indent=2))
    else:
        click.echo(_text(plan, dry_run, keep_refs))
    if not dry_run and plan.remove:
        remove_nodes(opened, plan.remove)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _line(node: GcNode) -> str:
    return f"  - {node.key}  {node.id}  {node.status}, {node.files} files, {_size(node.bytes)}"


def _text(plan: GcPlan, dry_run: bool, keep_refs: tuple[str, ...]) -> str:
    kept = "the specs" + "".join(f" and the specs at {ref}" for ref in keep_refs)
    lines = [f"{plan.store}: {plan.kept} node(s) referenced by {kept} are kept."]
    if plan.remove:
        verb = "would remove" if dry_run else "removing"
        lines.append(f"{verb} {len(plan.remove)} node(s), {_size(plan.bytes)}:")
        lines.extend(_line(node) for node in plan.remove)
    else:
        lines.append("nothing to remove: every node is referenced.")
    if plan.recent:
        lines.append(
            f"kept {len(plan.recent)} unreferenced node(s) written to within --min-age "
            "(a run may still be writing them; --min-age 0 removes them too):"
        )
        lines.extend(_line(node) for node in plan.recent)
    if plan.other:
        lines.append(f"left alone (not node directories): {', '.join(plan.other)}")
    if plan.remove:
        lines.append(
            f"dry run: nothing removed (run without --dry-run to free {_size(plan.bytes)})"
            if dry_run
            else f"removed {len(plan.remove)} node(s), freed {_size(plan.bytes)}"
        )
    return "\n".join(lines)


def _as_json(plan: GcPlan, dry_run: bool) -> dict[str, object]:
    def node(n: GcNode) -> dict[str, object]:
        return {"kind": n.kind, "name": n.name, "id": n.id, "status": n.status, "bytes": n.bytes}

    return {
        "store": plan.store,
        "dry_run": dry_run,
        "kept": plan.kept,
        "remove": [node(n) for n in plan.remove],
        "bytes": plan.bytes,
        "recent": [node(n) for n in plan.recent],
        "other": plan.other,
    }
