"""The heap tool's arithmetic: what the gateway's heap grew by between two snapshots, per
subscriber, by the code that allocated it."""

from __future__ import annotations

import sysconfig
import tempfile
import tracemalloc
from pathlib import Path

from bench.heap import DEPTH, ROOT, SITE, owner, per_subscriber

ASYNCIO = (f"{sysconfig.get_paths()['stdlib']}/asyncio/locks.py", 168)
UVICORN = ("/venv/lib/python3.11/site-packages/uvicorn/protocols/websockets/impl.py", 81)
SESSION = (str(ROOT / "services/gateway/session.py"), 200)


def snapshot(*traces: tuple[int, tuple[tuple[str, int], ...]]) -> tracemalloc.Snapshot:
    # tracemalloc's raw traces: (domain, size, frames from the innermost, frame count).
    return tracemalloc.Snapshot([(0, size, frames, len(frames)) for size, frames in traces],
                                DEPTH)


def test_the_owner_is_the_innermost_code_that_is_not_the_standard_library() -> None:
    [through_asyncio] = snapshot((64, (ASYNCIO, UVICORN, SESSION))).traces
    [ours] = snapshot((64, (SESSION, UVICORN))).traces
    [python_only] = snapshot((64, (ASYNCIO,))).traces
    site = str(Path(tempfile.gettempdir(), "oee-heap-x", "site", "sitecustomize.py"))
    [own] = snapshot((64, ((site, 9),))).traces
    assert owner(own.traceback) == "sitecustomize.py"  # no folder of this machine's
    assert owner(through_asyncio.traceback) == "uvicorn"
    assert owner(ours.traceback) == "services/gateway/session.py"
    assert owner(python_only.traceback).startswith("python")


def test_growth_is_divided_by_the_subscribers_that_came() -> None:
    before = snapshot((1000, (SESSION,)))
    after = snapshot((1000, (SESSION,)), *[(300, (ASYNCIO, UVICORN))] * 2,
                     *[(200, (SESSION, UVICORN))] * 2)
    grown = per_subscriber(before, after, subscribers=2)
    assert grown["bytes"] == 500
    assert grown["by_owner"] == {"uvicorn": 300, "services/gateway/session.py": 200}
    assert grown["top_lines"] == {"asyncio/locks.py:168": 300,
                                  "services/gateway/session.py:200": 200}


def test_the_site_module_compiles() -> None:
    compile(SITE.format(DEPTH=DEPTH), "sitecustomize.py", "exec")
