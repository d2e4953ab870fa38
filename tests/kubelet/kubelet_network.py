"""The test cluster's network: a node network namespace and one namespace per pod.

Each test cluster gets its own *node* network namespace (so that concurrent test runs
on one machine never see each other's addresses). Every pod gets a network namespace
of its own, joined to the node by a veth pair on a /30: the pod's `eth0` has the pod
IP, the node's end is the pod's gateway. The node also holds "service" addresses on
its loopback (`10.96.0.10` for the object store), which pods reach through their
gateway, as pods reach a ClusterIP.

Pods cannot reach each other (the node does not forward), which is stricter than any
NetworkPolicy; probes come from the node, as the kubelet's do.

Requires root and iproute2 (`ip netns`, `ip link`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = [
    "NETNS_DIR",
    "SERVICE_IP",
    "NodeHttpServer",
    "NodeNetwork",
    "PodNetwork",
    "in_namespace",
    "serve_on_node",
]

NETNS_DIR = "/run/netns"
SERVICE_IP = "10.96.0.10"
"""The object store's address, as a Service's ClusterIP would be."""
_POD_RANGE = ipaddress.ip_network("10.244.0.0/16")
_CLONE_NEWNET = 0x40000000
_OURS = re.compile(r"^kt(\d+)x[0-9a-f]{6}(p\d+)?$")
"""`kt<pid>x<random>` (a node) and `…p<n>` (its pods): the names this module gives."""
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class PodNetwork:
    """A pod's network namespace and address."""

    namespace: str
    ip: str
    gateway: str

    @property
    def path(self) -> str:
        """`/run/netns/<name>`, what `setns` and `nsenter --net=` take."""
        return f"{NETNS_DIR}/{self.namespace}"


class NodeNetwork:
    """The node's network namespace and the pod networks hung off it.

    Use as a context manager: everything it created is removed on exit.
    """

    def __init__(self) -> None:
        self.namespace = f"kt{os.getpid()}x{secrets.token_hex(3)}"
        self._lock = threading.Lock()
        self._next = 0
        self._pods: dict[str, PodNetwork] = {}

    @property
    def path(self) -> str:
        """`/run/netns/<node>`."""
        return f"{NETNS_DIR}/{self.namespace}"

    def __enter__(self) -> NodeNetwork:
        _remove_stale()
        _ip("netns", "add", self.namespace)
        _ip("-n", self.namespace, "link", "set", "lo", "up")
        _ip("-n", self.namespace, "addr", "add", f"{SERVICE_IP}/32", "dev", "lo")
        return self

    def __exit__(self, *exc: object) -> None:
        for pod in list(self._pods.values()):
            self.release(pod)
        with contextlib.suppress(RuntimeError):
            _ip("netns", "delete", self.namespace)

    def nsenter(self) -> list[str]:
        """The command prefix that runs a program in the node's network namespace."""
        return ["nsenter", f"--net={self.path}", "--"]

    def allocate(self) -> PodNetwork:
        """A new pod network namespace with its own IP, routed through the node."""
        with self._lock:
            index = self._next
            self._next += 1
        if 4 * (index + 1) > _POD_RANGE.num_addresses:
            raise RuntimeError("the test cluster ran out of pod addresses")
        base = _POD_RANGE.network_address + 4 * index
        gateway, address = str(base + 1), str(base + 2)
        name = f"{self.namespace}p{index}"
        veth = f"vk{index}"
        _ip("netns", "add", name)
        _ip(
            "-n",
            self.namespace,
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            name,
        )
        _ip("-n", self.namespace, "addr", "add", f"{gateway}/30", "dev", veth)
        _ip("-n", self.namespace, "link", "set", veth, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "addr", "add", f"{address}/30", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "route", "add", "default", "via", gateway)
        pod = PodNetwork(name, address, gateway)
        self._pods[name] = pod
        return pod

    def release(self, pod: PodNetwork) -> None:
        """Delete a pod's network namespace (its veth pair goes with it)."""
        self._pods.pop(pod.namespace, None)
        with contextlib.suppress(RuntimeError):
            _ip("netns", "delete", pod.namespace)


def _remove_stale() -> None:
    """Delete the namespaces of test clusters whose process is gone (a killed test run)."""
    if not os.path.isdir(NETNS_DIR):
        return
    for name in os.listdir(NETNS_DIR):
        match = _OURS.match(name)
        if match and not os.path.exists(f"/proc/{match[1]}"):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "delete", name)


@contextlib.contextmanager
def in_namespace(path: str) -> Iterator[None]:
    """Run the calling *thread* in the network namespace at `path` until the block ends.

    A network namespace is per thread: sockets this thread opens inside the block belong
    to that namespace. Use it in a thread of its own (a prober), never in the main thread
    of a test.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
        try:
            yield
        finally:
            _libc.setns(original, _CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(original)


def serve_on_node(
    network: NodeNetwork, port: int, handler: type[BaseHTTPRequestHandler]
) -> ThreadingHTTPServer:
    """An HTTP server at `SERVICE_IP:port` on the node, serving from a thread of its own.

    Its socket is opened inside the node's network namespace (so pods reach it through
    their gateway, and commands run with `NodeNetwork.nsenter()` reach it too). The
    caller shuts it down (`shutdown()`, `server_close()`).
    """
    bound: list[ThreadingHTTPServer | BaseException] = []

    def bind() -> None:
        try:
            with in_namespace(network.path):
                bound.append(ThreadingHTTPServer((SERVICE_IP, port), handler))
        except BaseException as exc:  # handed to the caller's thread
            bound.append(exc)

    thread = threading.Thread(target=bind)
    thread.start()
    thread.join()
    if isinstance(bound[0], BaseException):
        raise bound[0]
    server = bound[0]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class NodeHttpServer:
    """A test cluster service over HTTP at `SERVICE_IP:port` on the node, while in `with`.

    Subclasses set `port` and answer requests with the handler class `_handler()` returns.
    """

    port: int

    def __init__(self, network: NodeNetwork) -> None:
        self.network = network
        self._server: ThreadingHTTPServer | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._server = serve_on_node(self.network, self.port, self._handler())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
