"""One readiness probe of an HTTP health URL, shared by whoever waits for a server.

The standard library only: the evaluation client and the `auditc` process both poll on
their start-up path, where importing an HTTP client library would cost more than the
wait itself.
"""

from __future__ import annotations

import urllib.error
import urllib.request

__all__ = ["probe_health"]


def probe_health(url: str, timeout_s: float, any_status: bool = False) -> str | None:
    """None when `url` answers HTTP 200, else what went wrong (for logs and errors).

    With `any_status`, any HTTP answer counts (an external service without a health path:
    something serving at its URL is all that can be checked).
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) from our configs
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return None if any_status else f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, OSError) else str(reason)
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed answer
        return f"{type(exc).__name__}: {exc}"
    return None if status == 200 else f"HTTP {status}"
