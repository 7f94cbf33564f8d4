"""Reproducible randomness: with OEE_SEED set, every draw depends only on the seed and on
what it is for (order id, step, attempt), never on scheduling, so a run can be replayed."""

from __future__ import annotations

import os
import random

# Without a seed, draws only need to be random: one generator serves every purpose, as
# seeding a new one from the OS took 2.5 KB of the kernel's randomness and more CPU than
# its draws, on every order the router routed.
_unseeded = random.Random()
# A forked process draws its own numbers, not its parent's.
os.register_at_fork(after_in_child=_unseeded.seed)


def rng(seed: str, *purpose: object) -> random.Random:
    if not seed:
        return _unseeded
    return random.Random("/".join([seed, *map(str, purpose)]))
