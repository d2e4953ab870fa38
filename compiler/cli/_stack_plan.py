"""`auditc plan --stack NAME`: the plan of a Kubernetes deployment of one stack."""

from __future__ import annotations

from schemas import UsageError

from ._common import Settings


def plan_stack(
    settings: Settings,
    paths: tuple[str, ...],
    against: str | None,
    store: str | None,
    stack: str,
    format_: str,
) -> str:
    """The rendered plan of the stack's graph against the store (or --against), with the
    workflows a change of the stack file since --against (default HEAD) re-runs.

    Raises:
        UsageError: the stack keeps its store on a volume and neither --store nor
            --against says what to compare with.
        GitError: --against cannot be read.
    """
    from compiler import GitError, load_baseline, load_project, plan, render_plan, resolve_graph
    from compiler.backends.kubernetes import (
        StackBaseline,
        apply_stack_reruns,
        load_stack_config,
        stack_config_at,
        stack_file,
        stack_reruns,
    )

    config = load_stack_config(stack_file(settings.project_dir, stack))
    spec_paths = settings.spec_paths(paths or tuple(config.specs))
    graph = resolve_graph(load_project(settings.project_dir, spec_paths))
    if config.select:
        graph = graph.select(config.select)
    if against is None and store is None and config.store.uri is None:
        raise UsageError(
            f"stack {stack!r} keeps its store on a volume: pass --store with a path where it "
            "is mounted, or --against GIT_REF"
        )
    baseline = load_baseline(
        settings.project_dir, spec_paths, against=against, store=store or config.store.uri
    )
    try:
        before = stack_config_at(settings.project_dir, stack, against or "HEAD")
    except GitError as exc:
        if against is not None:
            raise
        before = StackBaseline(config, f"stack {stack} (not compared with git: {exc})")
    result = apply_stack_reruns(
        plan(graph, baseline), stack_reruns(graph, before.config, config), before.description
    )
    from compiler._estimate import store_manifests, with_costs

    uri = store or config.store.uri
    result = with_costs(result, graph, store_manifests(uri) if uri else [])
    return render_plan(result, format_)  # type: ignore[arg-type]
