"""bench/harness.py: a load generator measures with its cyclic garbage collector off."""

from __future__ import annotations

import gc

import pytest

from bench.harness import collections_paused


def test_the_collector_is_off_while_measuring_and_on_again_after() -> None:
    assert gc.isenabled()
    with collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_measurement_that_failed() -> None:
    with pytest.raises(RuntimeError), collections_paused():
        raise RuntimeError("the system under test went away")
    assert gc.isenabled()
