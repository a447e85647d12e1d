"""The inbound endpoint checks before it buffers: size cap, read timeout, bodies in flight, memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from mcom.service_bus.models import LoggedMessage

from .conftest import rss_mib

MIB = 1024 * 1024


def _zeros(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = b"0" * chunk
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block[:n]
        sent += n


def _post(url: str, size: int, headers: dict[str, str]) -> int:
    try:
        r = httpx.post(url + "/mcom/service-bus", content=_zeros(size),
                       headers={"Content-Length": str(size), "Content-Type": "application/json", **headers}, timeout=60)
        return r.status_code
    except httpx.HTTPError:
        return -1  # the server answered and closed before the whole body was sent


CLIENT = """
import sys, threading, httpx
url, n, size, sig = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def zeros():
    block = b"0" * 262144
    sent = 0
    while sent < size:
        k = min(len(block), size - sent)
        yield block[:k]
        sent += k
codes = [0] * n
def run(i):
    headers = {"Content-Length": str(size), "Content-Type": "application/json"}
    if sig:
        headers["X-Signature"] = sig
    try:
        codes[i] = httpx.post(url + "/mcom/service-bus", content=zeros(), headers=headers, timeout=60).status_code
    except httpx.HTTPError:
        codes[i] = -1
threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(map(str, codes)))
"""


def _clients(url: str, n: int, size: int, signature: str = "") -> tuple[list[int], float]:
    """``n`` concurrent POSTs of ``size`` bytes from a separate process (so RSS here is the server's).

    Returns the statuses and the peak RSS growth of this process (sampled every 20 ms) meanwhile.
    """
    before = rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = subprocess.run([sys.executable, "-c", CLIENT, url, str(n), str(size), signature],
                             capture_output=True, text=True, timeout=300, check=True)
    finally:
        done.set()
        sampler.join()
    return [int(c) for c in out.stdout.split()], max(peak[0], rss_mib()) - before


def test_many_concurrent_large_unsigned_bodies_keep_memory_flat(live: Any) -> None:
    codes, grown = _clients(live.url, 16, 45 * MIB)
    print(f"16 concurrent unsigned 45 MiB bodies: statuses {sorted(set(codes))}, peak RSS growth {grown:.1f} MiB")
    assert set(codes) <= {401, -1}
    assert 401 in codes
    assert grown < 16  # refused before reading: nothing buffered
    assert LoggedMessage.objects.count() == 0


def test_wrongly_signed_large_bodies_are_bounded_by_the_in_flight_budget(live: Any, env: Any) -> None:
    env(service_bus__max_inflight_bytes=24 * MIB, service_bus__max_body_bytes=16 * MIB)
    codes, grown = _clients(live.url, 12, 8 * MIB, "sha1=" + "0" * 40)
    print(f"12 concurrent wrongly signed 8 MiB bodies, budget 24 MiB: statuses {sorted(codes)}, peak RSS growth {grown:.1f} MiB")
    assert set(codes) <= {401, 503, -1}
    assert 401 in codes
    assert grown < 3 * 24  # the budget (joined once) plus allocator slack
    assert LoggedMessage.objects.count() == 0


def test_declared_size_over_the_cap_is_413_before_reading(live: Any, env: Any) -> None:
    env(service_bus__max_body_bytes=1 * MIB)
    assert _post(live.url, 2 * MIB, {"X-Signature": "sha1=" + "0" * 40}) in (413, -1)
    r = httpx.post(live.url + "/mcom/service-bus", content=b"x" * (2 * MIB),
                   headers={"X-Signature": "sha1=" + "0" * 40}, timeout=30)
    assert r.status_code == 413
    assert r.json()["error"]["message"] == f"request body larger than {MIB} bytes"


def test_chunked_body_over_the_cap_is_413(live: Any, env: Any) -> None:
    env(service_bus__max_body_bytes=1 * MIB)
    try:
        r = httpx.post(live.url + "/mcom/service-bus", content=_zeros(3 * MIB),  # no Content-Length: chunked
                       headers={"X-Signature": "sha1=" + "0" * 40}, timeout=30)
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # closed while we were still sending: also a refusal
    assert LoggedMessage.objects.count() == 0


def _slow_request(url: str, declared: int, first: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(
        b"POST /mcom/service-bus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Signature: sha1=" + b"0" * 40 + b"\r\nContent-Length: " + str(declared).encode() + b"\r\n\r\n" + first
    )
    return s


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_incomplete_body_is_dropped_after_the_read_timeout(live: Any, env: Any) -> None:
    env(service_bus__body_timeout_seconds=1)
    s = _slow_request(live.url, 1000, b'{"jsonrpc":')
    started = time.monotonic()
    answer = _read_all(s)  # the server answers and closes the connection
    elapsed = time.monotonic() - started
    s.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"not received in time" in answer
    assert elapsed < 3  # dropped after the 1 s timeout, the connection closed at once
    assert LoggedMessage.objects.count() == 0


def test_bodies_in_flight_are_bounded(live: Any, env: Any) -> None:
    env(service_bus__max_inflight_bodies=2, service_bus__body_timeout_seconds=3)
    held = [_slow_request(live.url, 1000, b"{") for _ in range(2)]
    time.sleep(0.3)
    r = httpx.post(live.url + "/mcom/service-bus", content=b"{}", headers={"X-Signature": "sha1=" + "0" * 40}, timeout=10)
    assert r.status_code == 503
    assert "in flight" in r.json()["error"]["message"]
    for s in held:
        assert _read_all(s).startswith(b"HTTP/1.1 408")
        s.close()
    # the slots are free again
    r = httpx.post(live.url + "/mcom/service-bus", content=b"{}", headers={"X-Signature": "sha1=" + "0" * 40}, timeout=10)
    assert r.status_code == 401


def test_unsigned_request_is_refused_without_reading_its_body(live: Any) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"POST /mcom/service-bus HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    answer = _read_all(s)  # answered at once, although not one byte of the body was sent
    s.close()
    assert answer.startswith(b"HTTP/1.1 401")
