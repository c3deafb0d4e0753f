"""helpers.net.reachable: the probe asked before a download that has no timeout."""
import contextlib
import socket
import threading

from helpers import net


def test_probe_says_no_for_a_silent_server():
    # A listening socket that is never accepted: the TCP connect succeeds (backlog), but no
    # HTTP answer ever comes, like a stalled network: not reachable.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert not net.reachable(f"http://127.0.0.1:{server.getsockname()[1]}/c", timeout=0.5)


def test_probe_stops_waiting_for_a_request_that_hangs(monkeypatch):
    """A request stuck before its own timeout applies (a DNS lookup) must not hold the
    caller: the probe answers 'no' while the request is still blocked."""
    release, finished = threading.Event(), []

    def stuck_urlopen(request, timeout):
        release.wait(30)                     # unblocked by the test, or after 30 s at most
        finished.append(True)
        return contextlib.nullcontext()
    monkeypatch.setattr(net.urllib.request, "urlopen", stuck_urlopen)
    try:
        assert not net.reachable("http://example.invalid/", timeout=0.2)
        assert finished == []                # it answered while the request was still stuck
    finally:
        release.set()


def test_probe_counts_an_http_error_as_an_answer(monkeypatch):
    def refuse(request, timeout):
        raise net.urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, None)
    monkeypatch.setattr(net.urllib.request, "urlopen", refuse)
    assert net.reachable("http://example.invalid/", timeout=1.0)
