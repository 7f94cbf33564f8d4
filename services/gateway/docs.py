"""Interactive API docs at /docs: Swagger UI from the swagger_ui_bundle package's own files,
so the page works without reaching any CDN (offline, or behind a strict firewall)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Order execution engine: API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      // The key typed into "Authorize" survives a reload of the page.
      persistAuthorization: true,
      // No call to the public validator service: the page must not leave this host.
      validatorUrl: null,
    });
  </script>
</body>
</html>
"""


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def files() -> list[BaseRoute]:
    """Swagger UI's files, and the page under its other name (the route table has /docs)."""
    return [
        Route("/docs/", page, methods=["GET"], include_in_schema=False),
        Mount("/docs", StaticFiles(directory=Path(str(swagger_ui_path))), name="docs"),
    ]
