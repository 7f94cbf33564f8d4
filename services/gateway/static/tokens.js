// The tokens the engine lists (GET /tokens), and those launched since the page asked:
// the form offers them, and the order detail turns base units into token units with them.

export class Tokens {
  constructor() {
    this.bySymbol = new Map();
  }

  fromList(list) {
    for (const token of list.tokens) this.bySymbol.set(token.symbol, token);
  }

  // A PoolLaunched fact: its token is listed from now on.
  fromLaunch(launch) {
    if (this.bySymbol.has(launch.symbol)) return false;
    this.bySymbol.set(launch.symbol, {
      symbol: launch.symbol, mint: launch.mint, decimals: launch.decimals, launched: true,
    });
    return true;
  }

  symbols() {
    return [...this.bySymbol.keys()];
  }

  // Base units (an integer from an event) as decimal text in the token's units; the
  // integer itself when the token is not known here.
  units(symbol, baseUnits) {
    const token = this.bySymbol.get(symbol);
    if (baseUnits === undefined || baseUnits === null) return "";
    if (!token) return `${baseUnits} base units`;
    return formatAmount(Number(baseUnits) / 10 ** token.decimals);
  }
}

export function formatAmount(value) {
  return Number(value).toLocaleString(undefined, { maximumSignificantDigits: 9 });
}
