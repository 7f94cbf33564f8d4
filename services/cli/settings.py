"""``oee settings``: every setting as this environment sets it, or (``--markdown``) the
README's configuration table, both from the declarations in ``shared.config``."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from shared.config import SETTINGS, load


def markdown() -> str:
    """The README's table, one row per declared setting."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        rows.append(f"| `{setting.env.var}` | {setting.shown_default} | {setting.rule or 'text'} "
                    f"| {setting.env.doc} |")
    return "\n".join(rows) + "\n"


def effective(env: Mapping[str, str] | None = None) -> str:
    """``VARIABLE=value`` per setting as the services would read it; passwords hidden."""
    settings = load(env)
    lines = []
    for setting in SETTINGS:
        value = getattr(settings, setting.field)
        text = hide_password(value) if setting.field.endswith("_url") else str(value)
        lines.append(f"{setting.env.var}={text}")
    return "\n".join(lines) + "\n"


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def run(as_markdown: bool) -> int:
    print(markdown() if as_markdown else effective(), end="")
    return 0
