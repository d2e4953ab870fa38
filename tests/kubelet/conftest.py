"""Fixtures of the manifest-execution tests: a node network and an S3 store on it.

The tests need root (network and mount namespaces, `setns`, bind mounts) and
iproute2, as CI has them (`.ci/run` runs as root); they fail, never skip, without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kubelet_network import NodeNetwork
from kubelet_store import S3Server


@pytest.fixture(scope="module")
def node() -> Iterator[NodeNetwork]:
    if os.geteuid() != 0:
        pytest.fail("the manifest-execution tests need root (network and mount namespaces)")
    with NodeNetwork() as network:
        yield network


@pytest.fixture(scope="module")
def s3(node: NodeNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with S3Server(node, "audit-results", log) as server:
        yield server
