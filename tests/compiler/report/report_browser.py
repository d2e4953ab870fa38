"""Headless Chromium driven over the DevTools protocol, to check the report as a browser sees it.

Each page is opened in a fresh tab with the Runtime, Log and Network domains on (and
auto-attached child frames), so the harness sees console errors, uncaught
exceptions, failed or refused loads (including Content-Security-Policy violations)
and every request with its URL. A page is clean when none of those occur and every
request is to `file:`, `data:`, `blob:` or `about:`.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import websocket

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
START_TIMEOUT = 30.0
LOAD_TIMEOUT = 20.0
SETTLE_S = 0.3
"""Keep listening this long after the load event, for late requests and errors."""
WINDOW = (1280, 900)


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools call failed."""


@dataclass
class PageReport:
    """What happened while a page loaded."""

    url: str
    errors: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions, log errors (CSP, failed loads)."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page (and its frames) requested."""

    @property
    def external(self) -> list[str]:
        """Requests that would leave the machine."""
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class Browser:
    """One headless Chromium process and its DevTools websocket."""

    def __init__(
        self, process: subprocess.Popen[bytes], ws: websocket.WebSocket, log: Path
    ) -> None:
        self.process = process
        self.ws = ws
        self.log = log
        self._seq = 0
        self._events: list[dict[str, Any]] = []

    @classmethod
    def launch(cls, profile: Path) -> Browser:
        """Start Chromium headless with a throwaway profile.

        Raises:
            BrowserError: no Chromium on PATH, or it did not open its DevTools port.
        """
        exe = next(
            (
                shutil.which(n)
                for n in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(n)
            ),
            None,
        )
        if exe is None:
            raise BrowserError(
                "the report tests need headless Chromium: apt-get install -y chromium (or `make system-deps`)"
            )
        profile.mkdir(parents=True, exist_ok=True)
        log = profile / "chromium.log"
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=sink)
        url = _devtools_url(profile, process, log)
        ws = websocket.create_connection(url, timeout=LOAD_TIMEOUT, suppress_origin=True)
        return cls(process, ws, log)

    def close(self) -> None:
        """Stop Chromium."""
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # ------------------------------------------------------------ protocol

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping the events that arrive meanwhile."""
        self._seq += 1
        message: dict[str, Any] = {"id": self._seq, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._seq:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def _next_event(self, deadline: float) -> dict[str, Any] | None:
        if self._events:
            return self._events.pop(0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.ws.settimeout(remaining)
        try:
            return dict(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            return None
        finally:
            self.ws.settimeout(LOAD_TIMEOUT)

    # --------------------------------------------------------------- pages

    def open(self, url: str) -> Page:
        """Open `url` in a new tab and record everything until it has loaded and settled."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self._watch(session)
        self.call(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
            session,
        )
        report = PageReport(url)
        sessions = {session}
        self.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + LOAD_TIMEOUT
        loaded_at: float | None = None
        while True:
            stop = deadline if loaded_at is None else min(deadline, loaded_at + SETTLE_S)
            event = self._next_event(stop)
            if event is None:
                break
            if (
                event.get("sessionId") not in sessions
                and event.get("method") != "Target.attachedToTarget"
            ):
                continue
            if event["method"] == "Page.loadEventFired" and event.get("sessionId") == session:
                loaded_at = time.monotonic()
            self._record(event, report, sessions)
        if loaded_at is None:
            raise BrowserError(f"{url} did not finish loading in {LOAD_TIMEOUT:.0f} s")
        return Page(self, target, session, report)

    def _watch(self, session: str) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            try:
                self.call(f"{domain}.enable", session=session)
            except BrowserError:
                if domain != "Page":  # workers have no Page domain
                    raise

    def _record(self, event: dict[str, Any], report: PageReport, sessions: set[str]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Target.attachedToTarget":
            child = params["sessionId"]
            sessions.add(child)
            self._watch(child)
            self.call("Runtime.runIfWaitingForDebugger", session=child)
        elif method == "Network.requestWillBeSent":
            report.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            report.errors.append(
                f"load failed: {params.get('errorText')} ({params.get('blockedReason', '')})"
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            report.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            report.errors.append(
                f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            report.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())


@dataclass
class Page:
    """An open tab."""

    browser: Browser
    target: str
    session: str
    report: PageReport

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.browser.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def links(self) -> list[str]:
        """Absolute URLs of every link, frame, stylesheet, image and script of the page."""
        value = self.evaluate(
            "[...document.querySelectorAll('a[href], iframe[src], link[href], img[src], script[src]')]"
            ".map(e => e.href || e.src)"
        )
        return [str(v) for v in value]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        # Headless Chromium paints only the tab in front.
        self.browser.call("Page.bringToFront", session=self.session)
        height = self.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": WINDOW[0], "height": max(int(height), 1), "scale": 1}
        data = self.browser.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            self.session,
        )["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Close the tab."""
        self.browser.call("Target.closeTarget", {"targetId": self.target})


def _devtools_url(profile: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """Chromium writes its port and browser path to DevToolsActivePort once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(
                f"chromium exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        if marker.exists():
            lines = marker.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    process.kill()
    raise BrowserError(f"chromium did not open its DevTools port in {START_TIMEOUT:.0f} s")


def crawl(browser: Browser, site: Path, screenshot: Path | None = None) -> dict[str, list[str]]:
    """Open every page linked from index.html; return page → problems (empty when clean)."""
    problems: dict[str, list[str]] = {}
    queue = deque([site / "index.html"])
    seen: set[Path] = set()
    while queue:
        page_path = queue.popleft()
        if page_path in seen:
            continue
        seen.add(page_path)
        page = browser.open(page_path.as_uri())
        try:
            if screenshot is not None and page_path == site / "index.html":
                page.screenshot(screenshot)
            found = [*page.report.errors, *(f"external request {u}" for u in page.report.external)]
            for link in page.links():
                parts = urlsplit(link)
                if link.startswith(LOCAL_SCHEMES) and parts.scheme != "file":
                    continue  # embedded data (notebook figures)
                if parts.scheme != "file":
                    found.append(f"non-local link {link}")
                    continue
                target = Path(unquote(parts.path))
                if not target.exists():
                    found.append(f"broken link {link}")
                elif target.suffix == ".html" and site in target.parents:
                    queue.append(target)
                if parts.fragment and target.exists():
                    found.extend(_missing_anchor(browser, target, parts.fragment))
        finally:
            page.close()
        problems[page_path.relative_to(site).as_posix()] = found
    return problems


_ANCHORS: dict[Path, set[str]] = {}


def _missing_anchor(browser: Browser, target: Path, fragment: str) -> list[str]:
    if target not in _ANCHORS:
        page = browser.open(target.as_uri())
        try:
            _ANCHORS[target] = set(
                page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
            )
        finally:
            page.close()
    return [] if fragment in _ANCHORS[target] else [f"no #{fragment} in {target.name}"]
