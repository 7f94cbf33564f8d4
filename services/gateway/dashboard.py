"""The dashboard at ``/``: static files shipped in this package, so the page needs no CDN
and no build step, and works offline. It talks to the public API like any client."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")

# The page loads only its own files and talks only to its own gateway: injected markup
# could neither run a foreign script nor send a key elsewhere.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'")


async def page(request: Request) -> FileResponse:
    # Revalidated on every load, so a new version of the engine never meets an old page.
    return FileResponse(STATIC / "index.html", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": POLICY,
        "Referrer-Policy": "no-referrer",
    })


def files() -> list[BaseRoute]:
    """The page's scripts, styles and images (the route table has the page itself)."""
    return [Mount("/static", StaticFiles(directory=STATIC), name="static")]
