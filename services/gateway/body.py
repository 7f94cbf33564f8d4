"""A request's body, read as it arrives and refused (413) once it is larger than any the API
takes, before the rest is read."""

from __future__ import annotations

from starlette.requests import Request

from services.gateway.errors import refusal

MAX_BODY_BYTES = 16 * 1024


async def body_of(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise refusal(413, "body", "size", f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)
