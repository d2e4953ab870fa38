"""`auditc attest (--key PRIVATE | --sigstore) [PATHS] [--select NAME[+]] [--store URI]`: sign the nodes."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXIT_CODES_HELP, Settings, check_store, paths_argument


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
    callback=check_store,
    help="Store whose nodes to sign: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="PRIVATE",
    help="Ed25519 private key (PEM, e.g. `openssl genpkey -algorithm ed25519`); an "
    "encrypted one takes its password from $AUDITC_SIGNING_KEY_PASSWORD.",
)
@click.option(
    "--sigstore",
    is_flag=True,
    help="Sign keylessly with Sigstore, as the OIDC identity the CI job has (GitHub "
    "Actions with `permissions: id-token: write`), or the token in "
    "$SIGSTORE_IDENTITY_TOKEN. Needs the network and the `sigstore` extra.",
)
@click.option(
    "--trust-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="With --sigstore: the client trust config (JSON) of a private Sigstore instance "
    "[default: the public-good instance].",
)
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    store: str | None,
    key_file: Path | None,
    sigstore: bool,
    trust_config: Path | None,
) -> None:
    """Sign an in-toto attestation of each complete node, for `auditc verify --key/--identity`.

    Each node gets an in-toto Statement (v1) whose subjects are its files with their
    sha256 (its manifest included) and whose predicate is its provenance (spec, node
    and upstream ids, input digests, model revision, auditc version, git state), in a
    DSSE envelope signed with the key: `<node>/_attestations/ed25519-<keyid>.dsse.json`;
    or, with --sigstore, in a Sigstore bundle (the envelope, the identity's short-lived
    certificate and the transparency-log entry):
    `<node>/_attestations/sigstore-<id>.sigstore.json`.
    A node whose files do not match its manifest is not signed (the command fails).
    Without PATHS or --select, every complete node of the store is signed.
    """
    from compiler import (
        SigningKey,
        SigstoreSigner,
        attest_node,
        load_project,
        resolve_graph,
        sigstore_attest_node,
    )
    from schemas import Store, UsageError

    if (key_file is None) == (not sigstore):
        raise UsageError("give one way to sign: --key PRIVATE or --sigstore")
    if trust_config is not None and not sigstore:
        raise UsageError("--trust-config goes with --sigstore")
    key = SigningKey.load(key_file) if key_file is not None else None
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
    signed = f"signed {len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    if key is not None:
        for node in nodes:
            click.echo(opened.uri_of(node, attest_node(opened, node, key)))
        click.echo(f"{signed} with key {key.keyid[:16]}", err=True)
        return
    signer = SigstoreSigner.open(trust_config)
    for node in nodes:
        click.echo(opened.uri_of(node, sigstore_attest_node(opened, node, signer)))
    click.echo(f"{signed} as {signer.identity} (issuer {signer.issuer}) with Sigstore", err=True)
