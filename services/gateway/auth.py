"""Who is asking: the account behind a request's API key.

Programs send the key in the ``x-api-key`` header, on HTTP requests and on the WebSocket
handshake. A browser cannot set headers on a WebSocket, so it sends the key in a first
``{"type": "auth", "apiKey": ...}`` message instead: a key never travels in a URL, where
proxies and access logs would keep it.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from services.gateway.validation import Invalid
from shared.accounts import LOCAL, Account, Keyring

log = logging.getLogger("oee.gateway")

HEADER = "x-api-key"


class AuthMessage(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A browser's first WebSocket message, in place of the header."""

    type: Literal["auth"]
    api_key: str


_auth_message = msgspec.json.Decoder(AuthMessage)


def unauthorized(message: str = "send a valid API key in the x-api-key header") -> Invalid:
    return Invalid(HEADER, "unauthorized", message)


def key_in_message(text: str) -> str:
    """The key of an auth message, or Invalid saying what a first message must be."""
    try:
        message = _auth_message.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        message = None
    if message is None:
        raise unauthorized(
            'send the key in the x-api-key header, or first {"type":"auth","apiKey":"..."}'
        )
    return message.api_key


class Authenticator:
    """``required``: a valid key names the account. ``off``: everyone is one built-in
    operator account, for a system that only its owner can reach."""

    def __init__(self, mode: str, database_url: str) -> None:
        self.required = mode == "required"
        self.keyring = Keyring(database_url) if self.required else None
        if not self.required:
            log.warning("OEE_AUTH=off: no API keys are checked; every request acts as the "
                        "operator account %r", LOCAL.name)

    async def open(self) -> None:
        if self.keyring is not None:
            await self.keyring.open()

    async def account(self, key: str | None) -> Account | None:
        """None for a missing, unknown or revoked key. Raises psycopg's OperationalError
        when the key store cannot be read (a 503)."""
        if self.keyring is None:
            return LOCAL
        if not key:
            return None
        return await self.keyring.authenticate(key)

    async def close(self) -> None:
        if self.keyring is not None:
            await self.keyring.close()
