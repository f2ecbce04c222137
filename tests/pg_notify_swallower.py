"""A stand-in for a connection pooler that never delivers notifications (as PgBouncer in transaction
mode does to LISTEN): a TCP proxy in front of the test Postgres that forwards everything except the
server's NotificationResponse messages, which it drops and counts.

It parses the server's message stream (type byte, 4-byte length), so the client must not negotiate
TLS: `dsn_through(dsn)` adds `sslmode=disable`.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

NOTIFICATION_RESPONSE = b"A"


class NotifySwallower:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.swallow = True  # False: forward notifications too (the pooler "fixed")
        self.swallowed = 0
        self.port = 0

    @classmethod
    async def start_for(cls, dsn: str) -> tuple[NotifySwallower, str]:
        parts = urlsplit(dsn)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432)
        proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        user = f"{parts.username}@" if parts.username else ""
        query = "&".join(filter(None, [parts.query, "sslmode=disable"]))
        return proxy, urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}", query=query))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        pumps = [asyncio.create_task(self._copy(reader, up_writer)),
                 asyncio.create_task(self._messages(up_reader, writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                w.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _messages(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(5)
            body = await reader.readexactly(int.from_bytes(header[1:5], "big") - 4)
            if header[:1] == NOTIFICATION_RESPONSE and self.swallow:
                self.swallowed += 1
                continue
            writer.write(header + body)
            await writer.drain()
