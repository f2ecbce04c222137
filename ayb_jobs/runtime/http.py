"""The admin HTTP server: uvicorn inside the daemon's event loop, on a socket we bind ourselves.

Binding first lets "port in use" be a clear start-up error (uvicorn would sys.exit), and
uvicorn must not capture SIGTERM/SIGINT: the daemon owns signals and stops HTTP last.

The listener is open to unauthenticated clients (probes, metrics), so no client may hold the
daemon's resources: every connection has a deadline to send its request, the number of open
connections is capped below the descriptor limit (the oldest idle one is dropped for a newcomer),
and errors the parser finds are answered with the JSON envelope before the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ayb_jobs.errors import StartupError

log = structlog.get_logger("ayb_jobs.http")

# A client must have sent a whole request (headers and body) this long after connecting, or after
# it started a new request on a kept-alive connection; half-sent requests are closed after it.
REQUEST_READ_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5.0
MAX_CONNECTIONS = 1024
# Descriptors kept for everything but HTTP clients: database pools, LISTEN, logs, embedded Postgres.
RESERVED_FDS = 256
MIN_CONNECTIONS = 16
WANTED_NOFILE = 65536
LISTEN_BACKLOG = 128
# Connections of the admin API's own pool (the daemon opens it beside the workers' pool).
ADMIN_POOL_SIZE = 3
# After an error answer, the rest of the client's request is read and dropped for this long, so the
# client reads the answer instead of a reset (closing with unread data makes the kernel send RST).
LINGER_S = 2.0
ACCEPT_ERROR_LOG_EVERY_S = 10.0
# Request line and headers together (h11's own limit only applies while a head is incomplete: a large
# head that arrives in one read would pass it).
MAX_HEAD_BYTES = 16 * 1024
ACCEPT_ERROR = "socket.accept() out of system resource"


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted sockets inherit it. Without it every keep-alive answer waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} (admin.listen): {exc.strerror or exc}; another process may "
            "be using the port: stop it, or set admin.listen / AYB_ADMIN_LISTEN to a free port"
        ) from exc
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one (at most 65536); returns the soft limit.

    Python keeps the inherited soft limit (often 1024), far below what the hard limit allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(hard, WANTED_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return WANTED_NOFILE if soft == resource.RLIM_INFINITY else soft


def connection_cap(fd_limit: int) -> int:
    """How many client connections to keep open at most, leaving room for the daemon's own files."""
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, fd_limit - RESERVED_FDS))


def raw_response(status: int, reason: str, message: str) -> bytes:
    """An error envelope written straight to the socket, for answers outside any request cycle."""
    body = json.dumps({"code": status, "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("latin-1") + body


class ConnectionGuard:
    """The open connections, oldest first; admits a newcomer by dropping the oldest idle one."""

    def __init__(self, max_connections: int, read_timeout_s: float = REQUEST_READ_TIMEOUT_S) -> None:
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.open: dict[GuardedH11Protocol, None] = {}
        self.evicted = 0
        self.rejected = 0

    def admit(self, conn: GuardedH11Protocol) -> bool:
        if len(self.open) >= self.max_connections:
            victim = next((c for c in self.open if c.is_idle()), None)
            if victim is None:
                self.rejected += 1
                return False
            self.evicted += 1
            self.open.pop(victim, None)
            victim.drop()
        self.open[conn] = None
        return True

    def remove(self, conn: GuardedH11Protocol) -> None:
        self.open.pop(conn, None)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-read deadline, a connection cap, and envelope errors."""

    guard: ConnectionGuard  # set on the per-server subclass made by `protocol_for`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._head_bytes = 0  # bytes of the coming request head received so far
        self._head_tail = b""  # its last bytes, to find a blank line split across reads

    # --- connection life ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.write(raw_response(503, "Service Unavailable",
                                         "too many open connections; try again shortly"))
            self._linger()
            return
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.remove(self)
        self._disarm_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a request already answered with an error
        waiting_for_head = self.conn.their_state is h11.IDLE
        if waiting_for_head and not self._head_fits(data):
            self._reject_large_head()
            return
        super().data_received(data)
        if waiting_for_head and self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data)[-3:]
        else:
            self._head_bytes, self._head_tail = 0, b""
        if self.transport.is_closing() or self._lingering:
            self._disarm_read_timer()
        elif self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm_read_timer()  # a request has begun (or goes on) but is not complete yet
        else:
            self._disarm_read_timer()

    def is_idle(self) -> bool:
        """No request is being served: dropping it loses nothing a client is waiting for."""
        return self.cycle is None or self.cycle.response_complete or self._lingering

    def drop(self) -> None:
        self._disarm_read_timer()
        self._unset_keepalive_if_required()
        self.transport.close()

    def _head_fits(self, data: bytes) -> bool:
        """Whether the request head (up to its blank line) stays within MAX_HEAD_BYTES."""
        if self._head_bytes + len(data) <= MAX_HEAD_BYTES:
            return True
        end = (self._head_tail + data).find(b"\r\n\r\n")
        return end != -1 and self._head_bytes - len(self._head_tail) + end + 4 <= MAX_HEAD_BYTES

    def _reject_large_head(self) -> None:
        self.transport.write(raw_response(431, "Request Header Fields Too Large",
                                          "request headers are larger than 16 KiB; send smaller headers"))
        self._linger()

    # --- request-read deadline ---------------------------------------------------------------------

    def _arm_read_timer(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.guard.read_timeout_s, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(raw_response(
                408, "Request Timeout",
                f"the request was not sent within {self.guard.read_timeout_s:g} s; send it at once"))
        else:
            self.cycle.disconnected = True  # the app stops waiting for the body
            self.cycle.message_event.set()
        self._linger()

    # --- parser errors -----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn from inside its `except h11.RemoteProtocolError` block."""
        exc = sys.exc_info()[1]
        if getattr(exc, "error_status_hint", 400) == 431:
            self._reject_large_head()
            return
        detail = f": {exc}" if exc is not None else ""
        self.transport.write(raw_response(400, "Bad Request", f"invalid HTTP request{detail}"))
        self._linger()

    def _linger(self) -> None:
        """Stop serving; read and drop what the client still sends, then close."""
        self._lingering = True
        self._disarm_read_timer()
        self._unset_keepalive_if_required()
        with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def protocol_for(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    return type("AdminHttpProtocol", (GuardedH11Protocol,), {"guard": guard})


class AcceptErrorLimiter:
    """Loop exception handler that lets one `socket.accept() out of system resource` through per
    interval (asyncio logs one per pending connection, with a traceback: hundreds of MB a minute
    when descriptors run out) and passes every other error to the previous handler."""

    def __init__(self, previous: Callable[..., Any] | None,
                 every_s: float = ACCEPT_ERROR_LOG_EVERY_S) -> None:
        self.previous = previous
        self.every_s = every_s
        self.suppressed = 0
        self._last = -float("inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_ERROR:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.every_s:
            self.suppressed += 1
            return
        self._last = now
        log.warning("http_accept_failed", error=str(context.get("exception")), suppressed=self.suppressed,
                    message="the process is out of file descriptors; raise LimitNOFILE (ulimit -n) "
                            "or lower the number of clients")
        self.suppressed = 0


class HttpServer:
    def __init__(self, app: Any, sock: socket.socket, *, on_stop: list[Callable[[], Any]] | None = None,
                 read_timeout_s: float = REQUEST_READ_TIMEOUT_S, max_connections: int | None = None) -> None:
        cap = max_connections if max_connections is not None else connection_cap(raise_fd_limit())
        self.guard = ConnectionGuard(cap, read_timeout_s)
        config = uvicorn.Config(
            app, log_config=None, lifespan="off", access_log=False, timeout_graceful_shutdown=5,
            http=protocol_for(self.guard), timeout_keep_alive=KEEP_ALIVE_S, backlog=LISTEN_BACKLOG,
            # Beyond the guard's cap no connection stays open, so this bounds requests in progress.
            limit_concurrency=self.guard.max_connections + 1,
        )
        self._server = _EmbeddedServer(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None
        self._on_stop = on_stop or []
        self._limiter: AcceptErrorLimiter | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def start(self) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        self._limiter = AcceptErrorLimiter(loop.get_exception_handler())
        loop.set_exception_handler(self._limiter)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise StartupError("the admin HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        return self._task

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)
        self._sock.close()
        for close in self._on_stop:  # e.g. the admin API's own pool, once no request can use it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), timeout=10)
        if self._limiter is not None:
            asyncio.get_running_loop().set_exception_handler(self._limiter.previous)
