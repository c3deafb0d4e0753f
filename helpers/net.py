"""Is a server reachable, within a bounded time? Asked before a download that has no
timeout of its own (torchvision's CIFAR-100, timm's hub weights), so that a machine
without network fails in seconds with a message instead of hanging."""
from __future__ import annotations

import threading
import urllib.error
import urllib.request


def reachable(url: str, timeout: float) -> bool:
    """True when `url` answers a HEAD request within `timeout` seconds.

    An HTTP request rather than a bare TCP connect, because sandboxes and proxies may
    accept any connection; any HTTP answer, an error status included, counts, since the
    server answered and the download reports the rest. urllib goes through HTTPS_PROXY /
    HTTP_PROXY when they are set. The request runs in a daemon thread, so a slow DNS
    lookup cannot outlast `timeout` either.
    """
    answered = []

    def head():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                        timeout=timeout):
                answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)
        except (OSError, ValueError):
            pass

    t = threading.Thread(target=head, daemon=True)
    t.start()
    t.join(timeout)
    return bool(answered)
