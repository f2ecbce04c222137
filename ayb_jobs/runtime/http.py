"""The admin HTTP server: uvicorn inside the daemon's event loop, on a socket we bind ourselves.

Binding first lets "port in use" be a clear start-up error (uvicorn would sys.exit), and
uvicorn must not capture SIGTERM/SIGINT: the daemon owns signals and stops HTTP last.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from ayb_jobs.errors import StartupError


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} (admin.listen): {exc.strerror or exc}; another process may "
            "be using the port: stop it, or set admin.listen / AYB_ADMIN_LISTEN to a free port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class HttpServer:
    def __init__(self, app: Any, sock: socket.socket) -> None:
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False,
                                timeout_graceful_shutdown=5)
        self._server = _EmbeddedServer(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def start(self) -> asyncio.Task[None]:
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
