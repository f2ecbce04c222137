"""The daemon's HTTP server itself (uvicorn on our own socket), over real loopback connections:
request-read deadline, connection cap, parser errors as envelopes, TCP_NODELAY."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from tests_api_helpers import TOKEN

from ayb_jobs.api.app import create_app
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime import http

READ_TIMEOUT_S = 0.5
MAX_CONNECTIONS = 20


async def _ready() -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[http.HttpServer]:
    app = create_app(None, token=TOKEN, jobs_enabled=False, metrics=Metrics(), readiness=_ready)
    srv = http.HttpServer(app, http.bind("127.0.0.1", 0), read_timeout_s=READ_TIMEOUT_S,
                          max_connections=MAX_CONNECTIONS)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _connect(srv: http.HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def _read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout)


def _envelope(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def test_keep_alive_requests_are_not_delayed_by_nagle(server) -> None:
    """Without TCP_NODELAY each answer (headers and body written separately) waited ~40 ms."""
    reader, writer = await _connect(server)
    request = b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n"
    latencies = []
    try:
        for _ in range(15):
            started = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
    assert statistics.median(latencies) < 0.020, latencies


def test_the_listening_socket_is_tcp_so_accepted_ones_get_nodelay() -> None:
    sock = http.bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


async def test_a_half_sent_request_is_answered_408_and_closed_after_the_read_deadline(server) -> None:
    reader, writer = await _connect(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-slow: ")  # the headers never end
    started = time.monotonic()
    raw = await _read_all(reader, timeout=READ_TIMEOUT_S + http.LINGER_S + 3)
    writer.close()
    assert time.monotonic() - started >= READ_TIMEOUT_S * 0.9
    status, body = _envelope(raw)
    assert status == 408 and body["code"] == 408 and "not sent within" in body["message"]


async def test_a_connection_that_never_sends_is_closed_after_the_read_deadline(server) -> None:
    reader, writer = await _connect(server)
    raw = await _read_all(reader, timeout=READ_TIMEOUT_S + http.LINGER_S + 3)
    writer.close()
    assert _envelope(raw)[0] == 408


async def test_a_kept_alive_connection_that_starts_a_request_and_stalls_is_closed(server) -> None:
    reader, writer = await _connect(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b" 200 " in head.split(b"\r\n")[0]
    await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
    writer.write(b"GET /healthz HTTP/1.1\r\nho")  # the second request stalls
    raw = await _read_all(reader, timeout=READ_TIMEOUT_S + http.LINGER_S + 3)
    writer.close()
    assert _envelope(raw)[0] == 408


async def test_idle_connections_beyond_the_cap_make_room_for_new_clients(server) -> None:
    idle = [await _connect(server) for _ in range(MAX_CONNECTIONS * 3)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
        assert len(server.guard.open) <= MAX_CONNECTIONS
        assert server.guard.evicted >= MAX_CONNECTIONS * 2
        # The oldest were closed by the server (EOF), not left holding descriptors.
        oldest_reader = idle[0][0]
        assert await asyncio.wait_for(oldest_reader.read(), 5) == b""
    finally:
        for _, writer in idle:
            writer.close()


async def test_a_200_kb_header_is_answered_431_not_reset(server) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        response = await client.get("/healthz", headers={"x-big": "a" * 200_000})
    assert response.status_code == 431
    assert response.json() == {"code": 431, "message": response.json()["message"]}
    assert "16 KiB" in response.json()["message"]


@pytest.mark.parametrize("raw", [
    b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-nul: a\x00b\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1 extra\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),  # a TLS ClientHello on the plain port
], ids=["nul-in-header", "bad-request-line", "tls-hello"])
async def test_malformed_requests_get_a_400_envelope(server, raw) -> None:
    reader, writer = await _connect(server)
    writer.write(raw)
    answer = await _read_all(reader, timeout=http.LINGER_S + 3)
    writer.close()
    status, body = _envelope(answer)
    assert status == 400 and body["code"] == 400 and body["message"].startswith("invalid HTTP request")


def test_accept_errors_are_logged_once_per_interval_and_others_pass_through() -> None:
    passed: list[dict] = []
    limiter = http.AcceptErrorLimiter(lambda _loop, ctx: passed.append(ctx), every_s=60)
    loop = asyncio.new_event_loop()
    try:
        for _ in range(1000):
            limiter(loop, {"message": http.ACCEPT_ERROR, "exception": OSError(24, "Too many open files")})
        limiter(loop, {"message": "something else"})
    finally:
        loop.close()
    assert limiter.suppressed == 999
    assert passed == [{"message": "something else"}]


def test_the_connection_cap_leaves_room_for_the_daemons_own_descriptors() -> None:
    assert http.connection_cap(1024) == 1024 - http.RESERVED_FDS
    assert http.connection_cap(65536) == http.MAX_CONNECTIONS
    assert http.connection_cap(100) == http.MIN_CONNECTIONS


@pytest.mark.parametrize("chunk", [1 << 20, 4096], ids=["one-write", "4k-writes"])
async def test_a_large_head_is_431_whether_it_arrives_at_once_or_in_pieces(server, chunk) -> None:
    """h11's own limit only covers a head still incomplete; a whole 200 kB head in one read passed it."""
    head = b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n"
    reader, writer = await _connect(server)
    for i in range(0, len(head), chunk):
        writer.write(head[i:i + chunk])
    raw = await _read_all(reader, timeout=http.LINGER_S + 5)
    writer.close()
    assert _envelope(raw)[0] == 431


async def test_a_head_just_under_the_limit_is_served(server) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        response = await client.get("/healthz", headers={"x-big": "a" * 15_000})
    assert response.status_code == 200


class FakeTransport(asyncio.Transport):
    """Records what the protocol writes; lets a test hand it data in exactly the reads it wants."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8090)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def write_eof(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _protocol() -> tuple[http.GuardedH11Protocol, FakeTransport]:
    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    cls = http.protocol_for(http.ConnectionGuard(10))
    proto = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


async def test_a_whole_large_head_in_a_single_read_is_431() -> None:
    """h11's limit covers only an incomplete head: 200 kB arriving in one read used to be served."""
    proto, transport = _protocol()
    proto.data_received(b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n")
    assert bytes(transport.written).startswith(b"HTTP/1.1 431 ")
    proto.connection_lost(None)


async def test_a_head_split_at_its_blank_line_within_the_limit_is_served() -> None:
    proto, transport = _protocol()
    head = b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 16_000 + b"\r\n\r"
    proto.data_received(head)
    proto.data_received(b"\n" + b"x" * 2000)  # the blank line's last byte, then pipelined junk
    assert not bytes(transport.written).startswith(b"HTTP/1.1 431 ")
    proto.connection_lost(None)
