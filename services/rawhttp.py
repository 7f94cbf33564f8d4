"""A minimal HTTP/1.1 client for load generation: keep-alive connections, one request at a
time on each, no redirects, no TLS. It costs a fraction of a general client's CPU, so the
load generator does not become the bottleneck it measures."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class RawClient:
    def __init__(self, base_url: str, connections: int) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.opened = 0
        self.limit = connections
        self.free = asyncio.Semaphore(connections)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        async with self.free:
            reader, writer = await self._connection()
            try:
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    .encode() + body
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                payload = await reader.readexactly(length)
            except BaseException:
                writer.close()
                self.opened -= 1
                raise
            self.idle.put_nowait((reader, writer))
            return status, payload

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not self.idle.empty():
            return self.idle.get_nowait()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()
