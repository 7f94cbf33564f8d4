"""A minimal HTTP/1.1 client for load generation: keep-alive connections, one request at a
time on each, no redirects, no TLS. It costs a fraction of a general client's CPU, so the
load generator does not become the bottleneck it measures."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RawClient:
    def __init__(self, base_url: str, connections: int,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.idle: list[Connection] = []
        self.free = asyncio.Semaphore(connections)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        async with self.free:
            if self.idle:
                try:
                    return await self._exchange(self.idle.pop(), path, body)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The server closed an idle keep-alive connection before reading this
                    # request, so nothing was processed: once more, on a new connection.
                    pass
            return await self._exchange(
                await asyncio.open_connection(self.host, self.port), path, body
            )

    async def _exchange(self, connection: Connection, path: str, body: bytes
                        ) -> tuple[int, bytes]:
        reader, writer = connection
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{self.headers}\r\n"
                .encode() + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.idle.append(connection)
        return int(head[9:12]), payload

    async def close(self) -> None:
        while self.idle:
            self.idle.pop()[1].close()
