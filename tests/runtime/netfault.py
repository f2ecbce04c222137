"""A TCP proxy in front of the test Postgres, so one in-process runtime can lose *its* database
while the test's own connections (direct, not through the proxy) keep working.

- `cut()`: every proxied connection is closed and new ones are refused (the server is down).
- `freeze()`: bytes stop flowing both ways, connections stay open (a hung server or a network
  partition); `freeze(replies_only=True)` lets requests through but holds the answers (a
  statement commits, its reply is lost); `thaw()` lets everything flow again.
- `restore()`: after a cut, accept connections again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class PgProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._requests = asyncio.Event()
        self._replies = asyncio.Event()
        self._requests.set()
        self._replies.set()
        self.port = 0

    @classmethod
    async def start_for(cls, dsn: str) -> tuple[PgProxy, str]:
        """A started proxy to the server of `dsn`, and the same DSN pointed at the proxy."""
        parts = urlsplit(dsn)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.restore()
        netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    async def restore(self) -> None:
        self.thaw()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def freeze(self, *, replies_only: bool = False) -> None:
        self._replies.clear()
        if not replies_only:
            self._requests.clear()

    def thaw(self) -> None:
        self._requests.set()
        self._replies.set()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer, self._requests),
                             self._pipe(up_reader, writer, self._replies), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    flowing: asyncio.Event) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
