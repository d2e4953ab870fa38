"""`auditc attest --key PRIVATE [PATHS] [--select NAME[+]] [--store URI]`: sign the nodes."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument


@click.command(
    "attest",
    epilog=EXIT_CODES_HELP,
    short_help="Sign in-toto attestations of a store's nodes.",
)
@paths_argument()
@click.option(
    "--select",
    "-s",
    "selected",
    multiple=True,
    metavar="NAME[+]",
    help="Sign only NAME and what it needs (NAME+: and everything downstream). Repeatable.",
)
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_ATTEST_STORE", "AUDITC_STORE"],
    help="Store whose nodes to sign: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="PRIVATE",
    help="Ed25519 private key (PEM, e.g. `openssl genpkey -algorithm ed25519`); an "
    "encrypted one takes its password from $AUDITC_SIGNING_KEY_PASSWORD.",
)
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    store: str | None,
    key_file: Path,
) -> None:
    """Sign an in-toto attestation of each complete node, for `auditc verify --key`.

    Each node gets an in-toto Statement (v1) whose subjects are its files with their
    sha256 (its manifest included) and whose predicate is its provenance (spec, node
    and upstream ids, input digests, model revision, auditc version, git state), in a
    DSSE envelope signed with the key: `<node>/_attestations/ed25519-<keyid>.dsse.json`.
    A node whose files do not match its manifest is not signed (the command fails).
    Without PATHS or --select, every complete node of the store is signed.
    """
    from compiler import SigningKey, attest_node, load_project, resolve_graph
    from schemas import Store

    key = SigningKey.load(key_file)
    opened = Store.open(store or settings.default_store, create=False)
    if paths or selected:
        graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
        if selected:
            graph = graph.select(list(selected))
        nodes = [n.store_path for n in graph if n.is_workflow and opened.is_complete(n.store_path)]
    else:
        nodes = [
            f"{m.kind.lower()}/{m.name}/{m.id}"
            for m in opened.manifests()
            if m.status == "complete"
        ]
    for node in nodes:
        relative = attest_node(opened, node, key)
        click.echo(opened.uri_of(node, relative))
    click.echo(
        f"signed {len(nodes)} node{'s' if len(nodes) != 1 else ''} with key {key.keyid[:16]}",
        err=True,
    )
