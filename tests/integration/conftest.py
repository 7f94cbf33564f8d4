from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shared.db import migrate
from tests.infra import fresh_database


@pytest.fixture(scope="session")
def database_url(admin_database_url: str) -> Iterator[str]:
    """The integration suite's own database. Its orders have random ids (uuid4), which sort
    after the time-ordered ids gateways give: in the database the end-to-end tests share,
    they would fill the first newest-first page of ``GET /orders`` whatever those tests
    submit, depending on which suite ran first."""
    with fresh_database(admin_database_url) as url:
        asyncio.run(migrate(url))
        yield url
