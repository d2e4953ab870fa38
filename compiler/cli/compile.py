"""`auditc compile --target kubernetes|local --out DIR [PATHS]`: write the compiled graph for review.

- `--target kubernetes` runs the Kubernetes Pulumi program under Pulumi's mock runtime
  (no CLI, no cluster) and writes every resource it declares as one manifest per file
  (`NN-kind-name.yaml`), validated with `kubernetes-validate --strict`;
- `--target local` writes the resolved graph as JSON, one file per node
  (`NN-kind-name.json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from schemas import UsageError

from ._common import EXIT_CODES_HELP, Settings, check_store, paths_argument

if TYPE_CHECKING:
    from compiler import Graph
    from compiler.backends.kubernetes import KubernetesConfig


@click.command(
    "compile",
    epilog=EXIT_CODES_HELP,
    short_help="Write the compiled graph (local JSON or Kubernetes manifests).",
)
@paths_argument()
@click.option(
    "--target",
    type=click.Choice(["kubernetes", "local"]),
    default="kubernetes",
    show_default=True,
    help="kubernetes: manifests of the Pulumi program; local: the resolved graph as JSON.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write into; files from an earlier compile there are replaced.",
)
@click.option(
    "--stack",
    default=None,
    help="Read settings from stacks/Pulumi.<STACK>.yaml (its auditc:specs are the default "
    "PATHS). Default for --target kubernetes without --store: the project's only stack.",
)
@click.option(
    "--store",
    metavar="URI",
    default=None,
    callback=check_store,
    help="Store the cluster uses (s3://…).",
)
@click.option("--namespace", default=None, help="Kubernetes namespace.")
@click.option("--runner-image", default=None, help="auditc runner image (repo:tag or @digest).")
@click.option(
    "--select",
    multiple=True,
    help="Only these resources and what they need (`name`, or `name+` with its downstream).",
)
@click.option(
    "--require-digests",
    is_flag=True,
    help="Fail when an image is named by tag instead of by digest (repo@sha256:…), as the "
    "stack setting auditc:images.requireDigests does; without it, a tag is a warning.",
)
@click.option(
    "--validate/--no-validate",
    default=True,
    show_default=True,
    help="Check each manifest with kubernetes-validate --strict (Kubernetes 1.33).",
)
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    target: str,
    out: Path,
    stack: str | None,
    store: str | None,
    namespace: str | None,
    runner_image: str | None,
    select: tuple[str, ...],
    require_digests: bool,
    validate: bool,
) -> None:
    """Compile the specs under PATHS (default: audits/, or the stack's specs) into OUT.

    The Kubernetes manifests are the very resources `pulumi up` would create, produced
    by the same program; use them to review a change or to deploy with a GitOps tool
    (each carries an Argo CD sync wave). Nothing is uploaded or deployed.
    """
    from compiler import load_project, resolve_graph

    config = _stack_config(settings, stack, store, namespace, runner_image, target)
    spec_paths = settings.spec_paths(paths or tuple(config.specs if config else ()))
    graph = resolve_graph(load_project(settings.project_dir, spec_paths))
    chosen = list(select) or (config.select if config else [])
    if chosen:
        graph = graph.select(chosen)
    if target == "local":
        written = write_graph_json(graph, out)
        click.echo(f"wrote {len(written)} node files to {out}")
        return
    assert config is not None
    if require_digests:
        images = config.images.model_copy(update={"require_digests": True})
        config = config.model_copy(update={"images": images})
    from compiler.backends.kubernetes import (
        KUBERNETES_VERSION,
        render_manifests,
        validate_manifests,
        write_manifests,
    )

    if config.budget.gpu_hours is not None:
        _check_budget(graph, config)
    rendering = render_manifests(graph, config, stack=stack or "dev")
    for message in rendering.warnings:
        click.echo(f"warning: {message}", err=True)
    if validate:
        validate_manifests(rendering, graph=graph)
    written = write_manifests(rendering, out)
    checked = f" (valid for Kubernetes {KUBERNETES_VERSION})" if validate else ""
    click.echo(f"wrote {len(written)} Kubernetes manifests to {out}{checked}")


def _stack_config(
    settings: Settings,
    stack: str | None,
    store: str | None,
    namespace: str | None,
    runner_image: str | None,
    target: str,
) -> KubernetesConfig | None:
    """The stack settings with the command-line options on top (None for `--target local`)."""
    if target == "local":
        return None
    from compiler.backends.kubernetes import KubernetesConfig, load_stack_config, stack_file

    overrides: dict[str, Any] = {}
    if namespace:
        overrides["namespace"] = namespace
    if store:
        overrides["store"] = {"uri": store}
    if stack is None and "store" not in overrides:
        stack = _only_stack(settings.project_dir)
        click.echo(f"using stack {stack} (stacks/Pulumi.{stack}.yaml)", err=True)
    if stack is not None:
        config = load_stack_config(stack_file(settings.project_dir, stack), overrides)
    else:
        config = KubernetesConfig.from_mapping(overrides, "command-line options")
    if runner_image:
        config = config.model_copy(
            update={"images": config.images.model_copy(update={"runner": runner_image})}
        )
    return config


def _check_budget(graph: Graph, config: KubernetesConfig) -> None:
    """Fail when the evaluations not complete in the store exceed `auditc:budget.gpuHours`."""
    from compiler._estimate import format_hours, store_manifests
    from compiler.backends.kubernetes import check_budget

    manifests = store_manifests(config.store.uri) if config.store.uri else None
    spent = check_budget(graph, config, manifests)
    click.echo(
        f"GPU-hours of this deployment: {format_hours(spent)} of a budget of "
        f"{config.budget.gpu_hours:g}",
        err=True,
    )


def _only_stack(project_dir: Path) -> str:
    """The project's one stack (`stacks/Pulumi.<name>.yaml`), as `pulumi` picks its only stack.

    Raises:
        UsageError: there is no stack file, or more than one.
    """
    from compiler.backends.kubernetes import stack_file

    found = sorted(
        p.name[len("Pulumi.") : -len(".yaml")]
        for p in stack_file(project_dir, "*").parent.glob("Pulumi.*.yaml")
    )
    if len(found) == 1:
        return found[0]
    listed = (
        f" (stacks: {', '.join(found)})" if found else " (there is no stacks/Pulumi.<NAME>.yaml)"
    )
    raise UsageError(
        "--target kubernetes needs a store: pass --stack NAME (stacks/Pulumi.NAME.yaml) "
        f"or --store URI{listed}"
    )


def write_graph_json(graph: Graph, out: Path) -> list[Path]:
    """Write one JSON file per node (`NN-kind-name.json`), replacing what auditc wrote in `out`.

    Only files the directory's marker lists are replaced or removed (see
    `compiler.write_generated_files`).
    """
    from compiler import write_generated_files

    width = max(2, len(str(len(graph))))
    files: dict[str, str] = {}
    for i, node in enumerate(graph, start=1):
        document = {
            "kind": node.kind,
            "name": node.name,
            "id": node.id,
            "store_path": node.store_path if node.is_workflow else None,
            "upstream": {graph[up].key: graph[up].id for up in node.upstream},
            "files": node.files,
            "location": str(node.location),
            "canonical": node.canonical,
        }
        name = f"{i:0{width}d}-{node.kind.lower()}-{node.name}.json"
        files[name] = json.dumps(document, indent=2, sort_keys=True) + "\n"
    return write_generated_files(out, files)
