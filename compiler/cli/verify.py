"""`auditc verify [PATHS] [--select NAME[+]] [--store URI] [--key PUB]… [--identity ID --issuer URL]…
[--rerun NAME]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from compiler import SigstoreIdentity

from ._common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, Settings, check_store, paths_argument


@click.command(
    "verify",
    epilog=EXIT_CODES_HELP,
    short_help="Check a store's files against their manifests, upstream ids and signatures.",
)
@paths_argument()
@click.option(
    "--select",
    "-s",
    "selected",
    multiple=True,
    metavar="NAME[+]",
    help="Check only NAME and what it needs (NAME+: and everything downstream). Repeatable.",
)
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_VERIFY_STORE", "AUDITC_STORE"],
    callback=check_store,
    help="Store to check: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="PUB",
    help="Trusted Ed25519 public key (PEM): every complete node must carry an attestation "
    "it signed, matching the node's files. Repeatable.",
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="ID",
    help="Trusted Sigstore identity: the signing certificate's subject, e.g. a GitHub "
    "workflow `https://github.com/OWNER/REPO/.github/workflows/FILE@refs/heads/main` or an "
    "e-mail address. Repeatable; each needs an --issuer (given once for all, or once each).",
)
@click.option(
    "--issuer",
    "issuers",
    multiple=True,
    metavar="URL",
    help="The OIDC issuer that vouched for --identity, e.g. "
    "https://token.actions.githubusercontent.com.",
)
@click.option(
    "--trust-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="Sigstore client trust config (JSON) of the instance that certified --identity "
    "[default: the public-good instance's trusted root, fetched through TUF].",
)
@click.option(
    "--offline",
    is_flag=True,
    help="With --identity and no --trust-config: the public-good instance's trusted root "
    "as sigstore-python last fetched or ships it, without the network.",
)
@click.option(
    "--rerun",
    metavar="NAME",
    help="Run the node NAME of the current specs again into a temporary store and compare "
    "the digests of its outputs with the stored ones.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per problem; json: for tools.",
)
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    store: str | None,
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    trust_config: Path | None,
    offline: bool,
    rerun: str | None,
    format_: str,
) -> None:
    """Re-hash every file of the store's nodes and check it against the node's manifest.

    Reports, one line per problem (`<node>/<file>: <kind>: <message>`): listed files
    that are missing, truncated or changed; files no manifest lists; manifests that do
    not parse (or are directories); node directories without a manifest; and nodes
    whose upstream Dataset, Evaluation or Method is missing or not complete. With
    --key or --identity/--issuer, every complete node must also carry an attestation
    signed by one of those keys or Sigstore identities, whose statement matches the
    node's files (`unsigned`, `bad-attestation`). Without PATHS or --select, the
    whole store is checked (a reviewer needs no specs); with them, the nodes of those
    specs, each of which must be in the store. The exit code is 1 when anything is wrong.
    """
    from compiler import PublicKey, verify_audit
    from schemas import Store

    settings: Settings = ctx.obj
    opened = Store.open(store or settings.default_store, create=False)
    if rerun is not None:
        _rerun(ctx, settings, opened, paths, rerun, format_)
        return
    nodes = _spec_nodes(settings, paths, selected) if paths or selected else None
    trusted = [PublicKey.load(path) for path in keys]
    trusted_ids = _identities(identities, issuers, trust_config, offline)
    result = verify_audit(opened, nodes=nodes, keys=trusted or None, identities=trusted_ids)
    if format_ == "json":
        click.echo(
            json.dumps(
                {
                    "store": opened.uri,
                    "nodes": len(result.nodes),
                    "ok": result.ok,
                    "problems": [
                        {"node": p.node, "file": p.file, "kind": p.kind, "message": p.message}
                        for p in result.problems
                    ],
                },
                indent=2,
            )
        )
    else:
        for problem in result.problems:
            click.echo(problem.render())
    n = len(result.nodes)
    signers = [_plural(len(trusted), "trusted key")] if trusted else []
    signers += [_plural(len(trusted_ids), "Sigstore identity")] if trusted_ids else []
    signed = f" and signed by {' or '.join(signers)}" if signers else ""
    if result.ok:
        click.echo(
            f"{_plural(n, 'node')} verified: every file matches its manifest{signed}", err=True
        )
    else:
        nodes_hit = len({p.node.split("/_runs/")[0] for p in result.problems})
        click.echo(
            f"error: {_plural(len(result.problems), 'problem')} in {_plural(nodes_hit, 'node')} "
            f"of {n} checked",
            err=True,
        )
    ctx.exit(EXIT_OK if result.ok else EXIT_FAILED)


def _plural(n: int, word: str) -> str:
    if n != 1 and word.endswith("y"):
        return f"{n} {word[:-1]}ies"
    return f"{n} {word}{'s' if n != 1 else ''}"


def _identities(
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    trust_config: Path | None,
    offline: bool,
) -> list[SigstoreIdentity]:
    from compiler import SigstoreIdentity
    from schemas import UsageError, require_extra

    if not identities:
        if issuers or trust_config or offline:
            raise UsageError("--issuer, --trust-config and --offline go with --identity ID")
        return []
    if len(issuers) == 1:
        issuers = issuers * len(identities)
    if len(issuers) != len(identities):
        raise UsageError(
            f"{len(identities)} --identity and {len(issuers)} --issuer: give one --issuer "
            "for all, or one for each --identity (in the same order)"
        )
    require_extra("sigstore", "auditc verify --identity")
    return [
        SigstoreIdentity(identity, issuer, trust_config, offline)
        for identity, issuer in zip(identities, issuers, strict=True)
    ]


def _spec_nodes(settings: Settings, paths: tuple[str, ...], selected: tuple[str, ...]) -> list[str]:
    from compiler import load_project, resolve_graph

    graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
    if selected:
        graph = graph.select(list(selected))
    return [node.store_path for node in graph if node.is_workflow]


def _rerun(
    ctx: click.Context,
    settings: Settings,
    store: object,
    paths: tuple[str, ...],
    name: str,
    format_: str,
) -> None:
    from compiler import load_project, rerun_node, resolve_graph
    from schemas import Store

    assert isinstance(store, Store)
    graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
    click.echo(f"re-running {name} into a temporary store…", err=True)
    result = rerun_node(graph, store, name)
    if format_ == "json":
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        for line in result.lines():
            click.echo(line)
    if result.ok:
        click.echo(
            f"{result.key} {result.node_id[:12]}: the re-run reproduced "
            f"{_plural(len(result.same), 'output')} bit for bit",
            err=True,
        )
    else:
        click.echo(
            f"error: {result.key} {result.node_id[:12]}: {_plural(len(result.differ), 'output')} "
            "differ from the stored run",
            err=True,
        )
    ctx.exit(EXIT_OK if result.ok else EXIT_FAILED)
