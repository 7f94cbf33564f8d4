"""A batch of script calls survives Redis forgetting its scripts."""

from __future__ import annotations

import pytest

from shared.scripts import run_all
from shared.stream import EventStore


async def test_a_forgotten_script_is_loaded_again_and_the_batch_runs_once(
    store: EventStore,
) -> None:
    redis = store.redis
    if store.cluster:
        pytest.skip("a pipeline of scripts is for a single Redis; a cluster calls each node")
    counter = f"{store.settings.namespace}:scripts-test"
    script = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    await redis.script_flush()
    replies = await run_all(redis, script, [([counter], [1]), ([counter], [2])],
                            ("GET", counter))
    assert replies == [1, 3, b"3"]
    assert await run_all(redis, script, [([counter], [4])]) == [7]
