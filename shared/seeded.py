"""Reproducible randomness: with OEE_SEED set, every draw depends only on the seed and on
what it is for (order id, step, attempt), never on scheduling, so a run can be replayed."""

from __future__ import annotations

import random


def rng(seed: str, *purpose: object) -> random.Random:
    if not seed:
        return random.Random()
    return random.Random("/".join([seed, *map(str, purpose)]))
