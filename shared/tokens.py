"""The tokens the engine trades, and conversions between decimal and base units.

The seed's tokens are listed here; launched ones (``shared.launches``) are learned at run
time from the market's stream, and from then on are found like the seed's."""

from __future__ import annotations

from decimal import Decimal

import base58
import msgspec


class Token(msgspec.Struct, frozen=True):
    symbol: str
    mint: str
    decimals: int
    # Reference price in USD that the simulated market moves around.
    usd: float

    @property
    def unit(self) -> int:
        return int(10**self.decimals)

    def to_base_units(self, amount: Decimal) -> int:
        return int(amount.scaleb(self.decimals))

    def to_decimal(self, base_units: int) -> Decimal:
        return Decimal(base_units).scaleb(-self.decimals)


WSOL_MINT = "So11111111111111111111111111111111111111112"

TOKENS: tuple[Token, ...] = (
    Token("SOL", WSOL_MINT, 9, 150.0),
    Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6, 1.0),
    Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6, 1.0),
    Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5, 0.00002),
    Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6, 0.8),
    Token("RAY", "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S6iCNLY7qrkZ6R", 6, 2.5),
)

_BY_NAME: dict[str, Token] = {t.symbol: t for t in TOKENS} | {t.mint: t for t in TOKENS}
_LAUNCHED: dict[str, Token] = {}


def learn(token: Token) -> None:
    """A launched token: found by symbol and mint from now on, in this process. A symbol
    or mint that is taken already keeps its first token."""
    if find(token.symbol) is None and find(token.mint) is None:
        _LAUNCHED[token.mint] = token
        _BY_NAME[token.symbol] = _BY_NAME[token.mint] = token


def listed() -> tuple[Token, ...]:
    """Every token: the seed's, then the launched ones in the order they were learned."""
    return (*TOKENS, *_LAUNCHED.values())


def is_mint(text: str) -> bool:
    """A well-formed Solana public key: base58 text of 32 bytes."""
    if not 32 <= len(text) <= 44:
        return False
    try:
        return len(base58.b58decode(text)) == 32
    except ValueError:
        return False


def find(name: str) -> Token | None:
    """A token by symbol (any case) or by mint address."""
    return _BY_NAME.get(name) or _BY_NAME.get(name.upper())


def get(symbol: str) -> Token:
    token = find(symbol)
    if token is None:
        raise KeyError(symbol)
    return token
