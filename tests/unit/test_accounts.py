"""Keys and account names, without a database."""

from __future__ import annotations

import hashlib

import pytest

from shared.accounts import (
    LOCAL,
    Account,
    InvalidName,
    hash_secret,
    new_key,
    parse_key,
    secret_matches,
    validate_name,
)


def test_a_new_key_reads_prefix_id_and_secret() -> None:
    key = new_key()
    parsed = parse_key(key)
    assert parsed is not None
    assert key == f"oee_{parsed.key_id}_{parsed.secret}"
    assert len(parsed.key_id) == 12
    assert len(parsed.secret) == 43  # 32 bytes of entropy, url-safe base64


def test_new_keys_differ_in_id_and_secret() -> None:
    parsed = [parse_key(new_key()) for _ in range(200)]
    assert len({p.key_id for p in parsed if p}) == 200
    assert len({p.secret for p in parsed if p}) == 200


@pytest.mark.parametrize("key", [
    None, "", "oee", "oee__", "nope_abcdefghijkl_" + "a" * 43,
    "oee_abcdefghijk_" + "a" * 43,          # id one short
    "oee_abcdefghijkL_" + "a" * 43,         # upper case is not in the id's alphabet
    "oee_abcdefghijkl_" + "a" * 42,         # secret one short
    "oee_abcdefghijkl_" + "a" * 44,
    "oee_abcdefghijkl_" + "a" * 42 + "!",
    " oee_abcdefghijkl_" + "a" * 43,
    "oee_abcdefghijkl_" + "a" * 43 + "\n",
])
def test_malformed_keys_do_not_parse(key: str | None) -> None:
    assert parse_key(key) is None


def test_a_secret_may_hold_underscores_and_dashes() -> None:
    parsed = parse_key("oee_abcdefghijkl_" + "_-" * 21 + "a")
    assert parsed is not None and parsed.key_id == "abcdefghijkl"
    assert parsed.secret == "_-" * 21 + "a"


def test_only_the_secrets_sha256_is_compared() -> None:
    secret = "s" * 43
    stored = hash_secret(secret)
    assert stored == hashlib.sha256(secret.encode()).digest()
    assert secret_matches(secret, stored)
    assert not secret_matches("s" * 42 + "t", stored)
    assert not secret_matches(secret, b"")


@pytest.mark.parametrize("name", ["a", "alice", "desk-7", "ops.eu_1", "0", "a" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "Alice", "-alice", ".alice", "_alice", "a" * 64, "al ice", "alice\n", "é", "a/b",
])
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidName, match="lower-case letters"):
        validate_name(name)


def test_roles() -> None:
    assert LOCAL.name == "local" and LOCAL.role == "operator" and LOCAL.is_operator
    assert not Account("alice", "trader").is_operator
