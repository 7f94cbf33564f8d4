"""shared/seeded.py: seeded draws are the seed's and the purpose's alone; unseeded ones are
random, without a generator seeded per draw."""

from __future__ import annotations

import os

from shared.seeded import rng


def test_a_seed_and_a_purpose_give_the_same_draws_every_time() -> None:
    first = [rng("s", "order-1", 2, "quote").random() for _ in range(3)]
    assert first == [rng("s", "order-1", 2, "quote").random() for _ in range(3)]
    assert rng("s", "order-1", 3, "quote").random() != first[0]
    assert rng("t", "order-1", 2, "quote").random() != first[0]


def test_without_a_seed_one_generator_serves_every_purpose() -> None:
    generator = rng("", "order-1", 1, "quote")
    assert rng("", "order-2", 5, "failure") is generator
    assert len({generator.random() for _ in range(100)}) == 100


def test_a_forked_process_draws_its_own_numbers() -> None:
    generator = rng("")
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next draw goes to the parent, then it ends at once
        os.write(writing, repr(rng("").random()).encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading) as pipe:
        drawn_by_child = float(pipe.read())
    assert drawn_by_child != generator.random()
