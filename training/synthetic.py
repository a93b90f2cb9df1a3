"""Synthetic hourly crypto market for the demo and the fast tests.

Each coin's hourly log move is ``beta * market + sector + idiosyncratic``:

* the market factor has a drift and a volatility set by a persistent bull / bear / sideways
  regime (a Markov chain over hours);
* market, sector and idiosyncratic shocks are standardised Student-t draws (fat tails) scaled
  by an EGARCH(1,1) volatility, so large moves are followed by large moves;
* sector and idiosyncratic moves slowly mean-revert (60-day half-life), so market-cap shares
  drift the way dominance does without an alt overtaking BTC over a two-year market;
* volume rises with the bar's realised and conditional volatility;
* each coin has a fixed circulating supply, chosen so that BTC holds about half of the total
  market cap and ETH about a sixth at the start.

A ``PlantedSignal`` turns the market into a test bench for the forecasting pipeline:

* ``none`` is a null market: regimes still switch volatility, but every regime's drift is 0
  and the coins' own moves are a random walk, so no coin's direction or relative return is
  predictable from the past (only the stablecoin's peg reverts, as a peg must);
* ``momentum`` and ``low_volatility`` add a known cross-sectional expected return on top of
  the same random walk: each hour every risky coin's move gets a drift set by its rank on a
  score of its own past prices, demeaned across coins so the market factor is untouched. The
  strength is the target rank IC of that score against the next 24 hours.

The coins' own moves mean-revert only without a signal, because that reversion is itself a
weak reversal signal (rank IC about -0.01 for the trailing week) that would blur the planted
one. Without it market-cap shares wander freely, so over two years, or under a strong
momentum, an alt can overtake BTC.

A seed fixes the market, and a market can be continued: ``generate_until`` to a later hour
gives the same candles for every hour an earlier end gave, then new ones, so a demo keeps its
market at the current hour without rewriting its history. For that the randomness is drawn
a day at a time (``BLOCK_HOURS``), each day from its own stream derived from (seed, day),
always a whole day and in the same order with or without a signal; the coins' fixed
parameters and the first regime come from the seed's own stream. Everything after the draws
looks only backwards (recursions, cumulative sums), and a market is cut from whole days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from store.candles import CANDLE_COLUMNS, SYMBOL, TIMESTAMP, validate_candles

REGIMES = ("bull", "bear", "sideways")

SECTORS = (
    "Bitcoin",
    "Ethereum & Smart Contracts",
    "DeFi",
    "Layer 1 Blockchains",
    "Layer 2 Solutions",
    "NFTs & Gaming",
    "Infrastructure",
    "Meme Coins",
    "Privacy Coins",
    "Stablecoins",
)

SIGNAL_KINDS = ("none", "momentum", "low_volatility")
MAX_SIGNAL_STRENGTH = 0.5
SIGNAL_HORIZON_HOURS = 24

MAX_COINS = 1000
MIN_COINS_FOR_STABLECOIN = 12
COIN_COLUMNS = ("symbol", "name", "sector")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_START = "2024-01-01T00:00:00Z"
BLOCK_HOURS = 24  # the randomness is drawn a day at a time, each day from its own stream


class _SectorProfile(NamedTuple):
    market_beta: float
    sector_vol: float  # hourly sd of the sector factor
    idio_vol: float  # hourly sd of a member's own noise
    turnover: float  # hourly USD volume as a fraction of market cap
    name_suffix: str


_SECTOR_PROFILES: dict[str, _SectorProfile] = {
    "Bitcoin": _SectorProfile(1.0, 0.0, 0.0015, 0.0012, ""),
    "Ethereum & Smart Contracts": _SectorProfile(1.1, 0.003, 0.0025, 0.0016, ""),
    "DeFi": _SectorProfile(1.3, 0.003, 0.0055, 0.003, "Swap"),
    "Layer 1 Blockchains": _SectorProfile(1.2, 0.003, 0.005, 0.0025, "Chain"),
    "Layer 2 Solutions": _SectorProfile(1.3, 0.003, 0.0055, 0.003, "Rollup"),
    "NFTs & Gaming": _SectorProfile(1.35, 0.003, 0.006, 0.003, "Realms"),
    "Infrastructure": _SectorProfile(1.15, 0.003, 0.005, 0.0025, "Network"),
    "Meme Coins": _SectorProfile(1.5, 0.003, 0.007, 0.006, "Inu"),
    "Privacy Coins": _SectorProfile(0.9, 0.003, 0.005, 0.002, "Cash"),
    "Stablecoins": _SectorProfile(0.0, 0.0, 0.0, 0.008, ""),
}
_NON_ALT_SECTORS = ("Bitcoin", "Ethereum & Smart Contracts", "Stablecoins")
_ALT_SECTORS = tuple(s for s in SECTORS if s not in _NON_ALT_SECTORS)

# Made-up coin names are head + tail; the first two letters of each are unique within
# their tuple, so the 4-letter symbols are unique for the first 16 * 13 = 208 alts. The
# alts after those repeat them, numbered by their round: ZOAN, ..., ZOAN2, ..., ZOAN3.
# fmt: off
_NAME_HEADS = ("Zor", "Kal", "Vex", "Tor", "Nov", "Quan", "Lum", "Fex",
               "Oro", "Myr", "Sol", "Hel", "Dra", "Pyx", "Bel", "Cyr")
_NAME_TAILS = ("ana", "ex", "ion", "ora", "ium", "yx", "enta",
               "ova", "ith", "ara", "ux", "eon", "ax")
# fmt: on

# Per regime, in the order of REGIMES.
_REGIME_DRIFT = np.array([2.5e-4, -3e-4, 0.0])  # hourly log drift of the market factor
_REGIME_VOL = np.array([1.0, 1.5, 0.65])  # multiplier on the market factor's volatility
_REGIME_MEAN_HOURS = np.array([21 * 24, 14 * 24, 21 * 24])

_MARKET_VOL = 0.0045
_MARKET_DF, _OWN_DF = 6.0, 5.0  # Student-t degrees of freedom: market, sector and coin
_EGARCH_PERSISTENCE = 0.985
_EGARCH_REACTION = 0.2

_BTC_PRICE, _BTC_SUPPLY, _ETH_PRICE = 42_000.0, 19_600_000.0, 2_300.0
_BTC_SHARE, _ETH_SHARE, _STABLE_SHARE = 0.50, 0.17, 0.04
_TOP_ALT_SHARE, _ALT_SHARE_DECAY = 0.08, 0.9

_OWN_MOVE_PERSISTENCE = 1.0 - math.log(2.0) / (60 * 24)  # half-life of 60 days
_STABLE_NOISE, _STABLE_PERSISTENCE = 0.0003, 0.95
_GAP_SCALE, _WICK_SCALE, _VOLUME_NOISE = 0.05, 0.5, 0.3
# A bar's mean agitation (|log move| + conditional sd, see _volume) per unit of the coin's
# nominal hourly sd: 2.06 +- 0.07 over the risky coins of 8 seeds of 12 coins x 2 years (the
# stablecoin's 1.81). Volume divides by it, so a coin's activity averages about 1.
_AGITATION_PER_SD = 2.06


class _ScoreRule(NamedTuple):
    window: int  # hours of closes the score looks back over
    by_volatility: bool  # minus the realised volatility over the window, else its log return
    # Realised rank IC per unit of the theoretical one (see _drift_scale), from the mean over
    # 8 seeds of 20 coins x 365 days. Momentum needs none: it lands 0.005 under its target up to
    # 0.2 (the market's own regime turns give -0.004 with nothing planted) and 0.52 at 0.5,
    # where it feeds itself; low volatility, 0.94, lands within 0.001 from 0.05 to 0.5.
    ic_efficiency: float


_SCORE_RULES: dict[str, _ScoreRule] = {
    "momentum": _ScoreRule(168, by_volatility=False, ic_efficiency=1.0),
    "low_volatility": _ScoreRule(168, by_volatility=True, ic_efficiency=0.94),
}


@dataclass(frozen=True)
class PlantedSignal:
    """A known source of predictability to plant in the market, or ``none`` for a null market.

    ``strength`` is the target mean per-hour cross-sectional Spearman IC between the score and
    each risky coin's forward 24-hour log return.
    """

    kind: str
    strength: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SIGNAL_KINDS:
            known = ", ".join(SIGNAL_KINDS)
            raise ValueError(f"unknown signal kind {self.kind!r}; known kinds: {known}")
        if self.kind == "none" and self.strength != 0:
            raise ValueError(f"signal none takes no strength, got {self.strength}")
        if not 0 <= self.strength <= MAX_SIGNAL_STRENGTH:
            raise ValueError(
                f"signal strength must be between 0 and {MAX_SIGNAL_STRENGTH}, got {self.strength}"
            )

    @classmethod
    def parse(cls, text: str) -> PlantedSignal:
        """Read ``KIND:STRENGTH`` (like ``momentum:0.1``) or ``none``, the command-line form."""
        kind, colon, strength = (part.strip() for part in text.strip().partition(":"))
        if kind == "none" and colon:
            raise ValueError(f"signal none takes no strength, got {text!r}")
        if kind in _SCORE_RULES and not strength:
            raise ValueError(f"signal {kind} needs a strength, like {kind}:0.1; got {text!r}")
        try:
            value = float(strength) if colon else 0.0
        except ValueError:
            raise ValueError(f"signal strength must be a number, got {strength!r}") from None
        return cls(kind, value)

    def __str__(self) -> str:
        return self.kind if self.kind == "none" else f"{self.kind}:{self.strength:g}"


@dataclass(frozen=True)
class SyntheticMarket:
    """A generated market and the ground truth behind it."""

    # A candle frame of many coins (`store.candles.MARKET_COLUMNS`), volume in USD.
    candles: pd.DataFrame
    coins: pd.DataFrame  # symbol, name, sector (the coins.csv format)
    regimes: pd.Series  # true regime name per hourly UTC timestamp
    signal: PlantedSignal | None = None
    # The planted score each risky coin had at each hour's close (hourly UTC index, one column
    # per symbol, NaN until a full window of closes exists); None when nothing is planted.
    signal_scores: pd.DataFrame | None = None


class _CoinProfile(NamedTuple):
    sector_index: np.ndarray
    market_beta: np.ndarray
    sector_vol: np.ndarray
    idio_vol: np.ndarray
    turnover: np.ndarray
    initial_price: np.ndarray
    supply: np.ndarray


class _Draws(NamedTuple):
    """The market's randomness, one row per hour, drawn a block of hours at a time."""

    regime_switch: np.ndarray  # uniform: the regime ends after this hour if under 1 / mean
    regime_jump: np.ndarray  # 1 or 2: how far round REGIMES a switch moves
    market: np.ndarray  # unit-variance Student-t shocks, (hours, 1)
    sector: np.ndarray  # (hours, sectors)
    idio: np.ndarray  # (hours, coins)
    stable: np.ndarray  # standard normal peg noise, (hours, stablecoins)
    gap: np.ndarray  # standard normal, (hours, coins), and so are the three below
    upper_wick: np.ndarray
    lower_wick: np.ndarray
    volume: np.ndarray


def generate_market(
    n_coins: int,
    days: int,
    seed: int,
    start: datetime | str = DEFAULT_START,
    signal: PlantedSignal | None = None,
) -> SyntheticMarket:
    """Generate ``days`` of hourly candles for ``n_coins`` coins (BTC and ETH first).

    The coin universe depends only on ``n_coins``; the seed drives the prices, volumes and
    regimes, so the same arguments always give the same market. ``signal`` plants a known
    predictable part (or, as ``none``, takes every predictable part away).
    """
    _check_arguments(n_coins, days)
    return _generate(n_coins, seed, _utc_hour(start, "start"), days * 24, signal)


def generate_until(
    n_coins: int,
    seed: int,
    start: datetime | str,
    until: datetime | str,
    signal: PlantedSignal | None = None,
) -> SyntheticMarket:
    """The market of ``generate_market`` from ``start`` through the hour ``until``, included.

    Every hour it shares with a market of the same coins, seed, start and signal that ends
    earlier or later has the same candles there: a later ``until`` continues the market.
    """
    _check_arguments(n_coins, 1)
    first, last = _utc_hour(start, "start"), _utc_hour(until, "until")
    if last < first:
        raise ValueError(f"until ({last}) must not be before start ({first})")
    return _generate(n_coins, seed, first, (last - first) // pd.Timedelta(hours=1) + 1, signal)


def start_for(end: datetime | str, days: int) -> pd.Timestamp:
    """The first hour of ``days`` of hourly candles whose last hour is ``end``."""
    _check_arguments(2, days)
    return _utc_hour(end, "end") - pd.Timedelta(hours=24 * days - 1)


def _generate(
    n_coins: int, seed: int, start: pd.Timestamp, hours: int, signal: PlantedSignal | None
) -> SyntheticMarket:
    """``hours`` hours from ``start``: whole blocks generated, then the first hours kept."""
    timestamps = pd.date_range(start, periods=hours, freq="h", name=TIMESTAMP)
    rng = np.random.default_rng(seed)
    coins = _coin_universe(n_coins)
    profile = _coin_profile(coins, rng)
    first_regime = int(rng.integers(len(REGIMES)))
    stable = (coins["sector"] == "Stablecoins").to_numpy()
    draws = _draw(seed, n_coins, int(stable.sum()), blocks=-(-hours // BLOCK_HOURS))
    regime_codes = _simulate_regimes(first_regime, draws.regime_switch, draws.regime_jump)
    log_paths, bar_sd, scores = _log_price_paths(draws, regime_codes, stable, profile, signal)
    open_, high, low, close = _ohlc(draws, log_paths, bar_sd, profile.initial_price)
    market_cap = close * profile.supply
    volume = _volume(draws, log_paths, bar_sd, market_cap, profile)
    columns = {
        "open": open_[:hours],
        "high": high[:hours],
        "low": low[:hours],
        "close": close[:hours],
        "volume": volume[:hours],
        "market_cap": market_cap[:hours],
    }
    regime_codes = regime_codes[:hours]
    candles = _candles_frame(coins["symbol"].to_numpy(), timestamps, columns)
    regimes = pd.Series(np.asarray(REGIMES)[regime_codes], index=timestamps, name="regime")
    signal_scores = None
    if scores is not None:
        risky = coins.loc[coins["sector"] != "Stablecoins", "symbol"]
        signal_scores = pd.DataFrame(
            scores[:hours], index=timestamps, columns=pd.Index(risky, name="symbol")
        )
    return SyntheticMarket(
        candles=candles,
        coins=coins,
        regimes=regimes,
        signal=signal,
        signal_scores=signal_scores,
    )


def write_csv(market: SyntheticMarket, out_dir: Path) -> list[Path]:
    """One file per coin named f"{symbol}-USD_1h.csv" with header
    timestamp,open,high,low,close,volume,market_cap (timestamp ISO 8601 UTC like
    2024-01-01T00:00:00Z), plus coins.csv (symbol,name,sector). Returns the paths written.

    The candles are validated first: a bad one raises `store.candles.CandlesRejected` before
    any file is written.
    """
    candles = validate_candles(market.candles)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for symbol, frame in candles.groupby(SYMBOL, sort=True):
        path = out_dir / f"{symbol}-USD_1h.csv"
        frame.to_csv(
            path,
            columns=list(CANDLE_COLUMNS),
            index=False,
            date_format=TIMESTAMP_FORMAT,
            float_format="%.10g",
        )
        written.append(path)
    coins_path = out_dir / "coins.csv"
    market.coins.to_csv(coins_path, columns=list(COIN_COLUMNS), index=False)
    written.append(coins_path)
    return written


def _check_arguments(n_coins: int, days: int) -> None:
    if not 2 <= n_coins <= MAX_COINS:
        raise ValueError(f"n_coins must be between 2 (BTC and ETH) and {MAX_COINS}, got {n_coins}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")


def _utc_hour(moment: datetime | str, what: str) -> pd.Timestamp:
    """``moment`` as a UTC timestamp on a whole hour; a naive one is taken as UTC."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stamp != stamp.floor("h"):
        raise ValueError(f"{what} must fall on a whole hour, got {moment}")
    return stamp


def _draw(seed: int, n_coins: int, n_stable: int, blocks: int) -> _Draws:
    """The randomness of the first ``blocks`` blocks of hours, each from its own stream.

    Each block takes five draws, always whole and in the same order whatever the signal:
    the regime's uniforms and jumps, the market's Student-t shocks, the sectors' and coins'
    (one degree of freedom apart from the market's), and every standard normal it needs.
    """
    n_own = len(SECTORS) + n_coins
    n_normal = n_stable + 4 * n_coins
    switch, jump, market, own, normal = (
        np.concatenate(field)
        for field in zip(
            *(_draw_block(_block_rng(seed, block), n_own, n_normal) for block in range(blocks)),
            strict=True,
        )
    )
    market /= math.sqrt(_MARKET_DF / (_MARKET_DF - 2.0))
    own /= math.sqrt(_OWN_DF / (_OWN_DF - 2.0))
    gap, upper_wick, lower_wick, volume = np.split(normal[:, n_stable:], 4, axis=1)
    return _Draws(
        regime_switch=switch,
        regime_jump=jump,
        market=market,
        sector=own[:, : len(SECTORS)],
        idio=own[:, len(SECTORS) :],
        stable=normal[:, :n_stable],
        gap=gap,
        upper_wick=upper_wick,
        lower_wick=lower_wick,
        volume=volume,
    )


def _block_rng(seed: int, block: int) -> np.random.Generator:
    """The stream of one block: a child of the seed's, apart from the one the profile uses."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))


def _draw_block(
    rng: np.random.Generator, n_own: int, n_normal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    hours = BLOCK_HOURS
    return (
        rng.random(hours),
        rng.integers(1, len(REGIMES), size=hours),
        rng.standard_t(_MARKET_DF, size=(hours, 1)),
        rng.standard_t(_OWN_DF, size=(hours, n_own)),
        rng.standard_normal((hours, n_normal)),
    )


def _coin_universe(n_coins: int) -> pd.DataFrame:
    """BTC, ETH, made-up alts round-robin over the alt sectors, and USDX for larger markets."""
    has_stable = n_coins >= MIN_COINS_FOR_STABLECOIN
    rows = [("BTC", "Bitcoin", "Bitcoin"), ("ETH", "Ethereum", "Ethereum & Smart Contracts")]
    rows += [_alt_coin(i) for i in range(n_coins - 2 - int(has_stable))]
    if has_stable:
        rows.append(("USDX", "USDX Dollar", "Stablecoins"))
    return pd.DataFrame(rows, columns=list(COIN_COLUMNS))


def _alt_coin(i: int) -> tuple[str, str, str]:
    head = _NAME_HEADS[i % len(_NAME_HEADS)]
    tail = _NAME_TAILS[(5 * i) % len(_NAME_TAILS)]
    sector = _ALT_SECTORS[i % len(_ALT_SECTORS)]
    round_number = i // (len(_NAME_HEADS) * len(_NAME_TAILS)) + 1
    mark = "" if round_number == 1 else str(round_number)
    name = f"{head}{tail}{mark} {_SECTOR_PROFILES[sector].name_suffix}"
    return (head[:2] + tail[:2]).upper() + mark, name, sector


def _coin_profile(coins: pd.DataFrame, rng: np.random.Generator) -> _CoinProfile:
    """Per-coin parameters: the sector's profile with some per-coin jitter, and the supply.

    BTC and ETH keep their sector's market beta exactly, so their cap ratio does not trend.
    """
    sectors = coins["sector"].to_numpy()
    n = len(sectors)
    profiles = [_SECTOR_PROFILES[s] for s in sectors]
    beta, sector_vol, idio_vol, turnover = np.array(
        [(p.market_beta, p.sector_vol, p.idio_vol, p.turnover) for p in profiles]
    ).T
    alt = ~np.isin(sectors, _NON_ALT_SECTORS)
    initial_price = np.where(sectors == "Stablecoins", 1.0, 10 ** rng.uniform(-2.0, 2.5, n))
    initial_price[:2] = _BTC_PRICE, _ETH_PRICE
    shares = _initial_cap_shares(sectors, alt)
    total_cap = _BTC_PRICE * _BTC_SUPPLY / shares[0]
    return _CoinProfile(
        sector_index=np.array([SECTORS.index(s) for s in sectors]),
        market_beta=beta * np.where(alt, rng.uniform(0.85, 1.15, n), 1.0),
        sector_vol=sector_vol,
        idio_vol=idio_vol * rng.uniform(0.8, 1.2, n),
        turnover=turnover * rng.uniform(0.7, 1.3, n),
        initial_price=initial_price,
        supply=shares * total_cap / initial_price,
    )


def _initial_cap_shares(sectors: np.ndarray, alt: np.ndarray) -> np.ndarray:
    """Starting share of total market cap: BTC ~50%, ETH ~17%, alts a decaying tail.

    The alt tail is capped at what is left after BTC, ETH and the stablecoin, so BTC keeps
    about half of the market however many coins there are (more when there are very few).
    """
    shares = np.where(sectors == "Stablecoins", _STABLE_SHARE, 0.0)
    shares[:2] = _BTC_SHARE, _ETH_SHARE
    ranks = np.arange(1, alt.sum() + 1)
    tail = _TOP_ALT_SHARE * ranks**-_ALT_SHARE_DECAY
    budget = 1.0 - shares.sum()
    if tail.sum() > budget:
        tail *= budget / tail.sum()
    shares[alt] = tail
    return shares / shares.sum()


def _simulate_regimes(first: int, switch: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """Regime code per hour from a Markov chain with high self-transition probabilities.

    After each hour the regime ends with probability 1 / its mean length (so spells have a
    geometric length with that mean) and jumps to one of the other regimes.
    """
    leave = (1.0 / _REGIME_MEAN_HOURS).tolist()
    codes = np.empty(len(switch), dtype=np.int64)
    code = first
    for hour, (draw, step) in enumerate(zip(switch.tolist(), jump.tolist(), strict=True)):
        codes[hour] = code
        if draw < leave[code]:
            code = (code + step) % len(REGIMES)
    return codes


def _log_price_paths(
    draws: _Draws,
    regime_codes: np.ndarray,
    stable: np.ndarray,
    profile: _CoinProfile,
    signal: PlantedSignal | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Log of close over initial price and each bar's conditional sd, shape (hours, coins),
    and the planted score of each risky coin (None when nothing is planted).

    The market moves accumulate as a random walk. Without a signal each coin's own moves
    (sector and idiosyncratic) slowly mean-revert, so market-cap shares wander without BTC
    losing its lead; with one they are a random walk too, plus any planted drift.
    """
    null_market = signal is not None and signal.kind == "none"
    drift = np.zeros(len(REGIMES)) if null_market else _REGIME_DRIFT
    market_moves, own_moves, own_sd, bar_sd = _factor_moves(draws, regime_codes, profile, drift)
    scores: np.ndarray | None = None
    if signal is None:
        paths = np.cumsum(market_moves, axis=0) + _ar1(own_moves, _OWN_MOVE_PERSISTENCE)
    else:
        moves = market_moves + own_moves
        if signal.kind in _SCORE_RULES:
            moves[:, ~stable], scores = _plant_signal(moves[:, ~stable], own_sd[:, ~stable], signal)
        paths = np.cumsum(moves, axis=0)
    if stable.any():
        paths[:, stable] = np.log1p(_STABLE_NOISE * _ar1(draws.stable, _STABLE_PERSISTENCE))
        bar_sd[:, stable] = _STABLE_NOISE
    return paths, bar_sd, scores


def _factor_moves(
    draws: _Draws,
    regime_codes: np.ndarray,
    profile: _CoinProfile,
    regime_drift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hourly log moves from the market and from the coin itself, the sd of the coin's own
    move, and the sd of its whole move."""
    market_z, market_vol = draws.market, _egarch_volatility(draws.market, _MARKET_DF)
    sector_z, sector_vol = draws.sector, _egarch_volatility(draws.sector, _OWN_DF)
    idio_z, idio_vol = draws.idio, _egarch_volatility(draws.idio, _OWN_DF)

    market_sd = _MARKET_VOL * _REGIME_VOL[regime_codes][:, None] * market_vol
    market = regime_drift[regime_codes][:, None] + market_sd * market_z
    sector_sd = profile.sector_vol * sector_vol[:, profile.sector_index]
    idio_sd = profile.idio_vol * idio_vol
    own = sector_sd * sector_z[:, profile.sector_index] + idio_sd * idio_z
    beta = profile.market_beta
    bar_sd = np.sqrt((beta * market_sd) ** 2 + sector_sd**2 + idio_sd**2)
    return beta * market, own, np.sqrt(sector_sd**2 + idio_sd**2), bar_sd


def _plant_signal(
    moves: np.ndarray, own_sd: np.ndarray, signal: PlantedSignal
) -> tuple[np.ndarray, np.ndarray]:
    """The risky coins' moves with the planted drift added, and the score behind it.

    At each hour's close a coin's score is read from its closes over the rule's window; the
    next hour's move gets ``scale * own_sd * q``, where q is the coin's standardised rank on
    that score, demeaned across coins. The score feeds on the moves it drives (momentum begets
    momentum), so the hours are walked in order.
    """
    rule = _SCORE_RULES[signal.kind]
    hours, n_coins = moves.shape
    scale = _drift_scale(signal.strength, rule)
    centred_ranks = np.arange(n_coins) - (n_coins - 1) / 2.0
    unit_ranks = centred_ranks / np.sqrt((n_coins**2 - 1) / 12.0)
    planted = moves.copy()
    totals = np.zeros((hours + 1, n_coins))  # sums of moves (or of squares) up to each close
    scores = np.full((hours, n_coins), np.nan)
    for hour in range(hours):
        if hour > rule.window:
            q = unit_ranks[np.argsort(np.argsort(scores[hour - 1]))]
            drift = scale * own_sd[hour] * q
            planted[hour] += drift - drift.mean()
        step = planted[hour] ** 2 if rule.by_volatility else planted[hour]
        totals[hour + 1] = totals[hour] + step
        if hour >= rule.window:
            scores[hour] = _window_score(totals, hour, rule)
    return planted, scores


def _window_score(totals: np.ndarray, hour: int, rule: _ScoreRule) -> np.ndarray:
    """Log return (or minus realised volatility) over the window up to ``hour``'s close."""
    window_sum = totals[hour + 1] - totals[hour + 1 - rule.window]
    return -np.sqrt(window_sum / rule.window) if rule.by_volatility else window_sum


def _drift_scale(strength: float, rule: _ScoreRule) -> float:
    """Hourly drift per unit rank and unit own sd that gives a 24-hour rank IC of ``strength``.

    Over H = 24 hours a coin's own move, in units of its own sd, is H * scale * q of drift
    plus noise of sd sqrt(H), so their correlation is rho = H * scale / sqrt(H**2 * scale**2
    + H), i.e. scale = rho / sqrt(H * (1 - rho**2)). For normal variables the rank IC is
    (6 / pi) * arcsin(rho / 2), which gives rho. The market's share of the noise, the score
    changing inside the horizon and fat tails are folded into the rule's measured efficiency.
    """
    rho = 2.0 * math.sin(math.pi * strength / 6.0)
    return rho / math.sqrt(SIGNAL_HORIZON_HOURS * (1.0 - rho**2)) / rule.ic_efficiency


def _egarch_volatility(z: np.ndarray, df: float) -> np.ndarray:
    """The EGARCH(1,1) relative volatility of unit-variance Student-t shocks ``z``.

    log(vol_t**2) = b * log(vol_{t-1}**2) + a * (|z_{t-1}| - E|z|): a large shock raises the
    next hours' volatility, which decays back with persistence b.
    """
    news = _EGARCH_REACTION * (np.abs(z) - _mean_abs_unit_t(df))
    lagged_news = np.vstack([np.zeros((1, z.shape[1])), news[:-1]])
    return np.exp(0.5 * _ar1(lagged_news, _EGARCH_PERSISTENCE))


def _mean_abs_unit_t(df: float) -> float:
    """E|z| for a Student-t with ``df`` degrees of freedom scaled to unit variance."""
    log_ratio = math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
    return 2.0 * math.sqrt(df - 2.0) * math.exp(log_ratio) / (math.sqrt(math.pi) * (df - 1.0))


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """x_t = phi * x_{t-1} + u_t down axis 0, from x_{-1} = 0; whole blocks of hours.

    Within a block, x_k = phi**k * cumsum(u_j / phi**j) plus phi**(k+1) times the previous
    block's last value, so the Python loop runs once per block rather than once per hour.
    Only elementwise arithmetic and running sums: each hour's value depends on the hours
    before it alone, bit for bit, however many hours follow.
    """
    hours, columns = shocks.shape
    powers = (phi ** np.arange(BLOCK_HOURS))[:, None]
    blocks = shocks.reshape(hours // BLOCK_HOURS, BLOCK_HOURS, columns)
    within = np.cumsum(blocks / powers, axis=1) * powers
    carry = phi * powers
    out = np.empty_like(within)
    previous = np.zeros(columns)
    for block in range(len(blocks)):
        out[block] = within[block] + carry * previous
        previous = out[block, -1]
    return out.reshape(hours, columns)


def _ohlc(
    draws: _Draws, log_paths: np.ndarray, bar_sd: np.ndarray, initial_price: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open near the previous close, wicks beyond the body that scale with the bar's sd."""
    close = initial_price * np.exp(log_paths)
    previous_close = np.vstack([initial_price, close[:-1]])
    open_ = previous_close * np.exp(_GAP_SCALE * bar_sd * draws.gap)
    upper_wick = np.exp(_WICK_SCALE * bar_sd * np.abs(draws.upper_wick))
    lower_wick = np.exp(-_WICK_SCALE * bar_sd * np.abs(draws.lower_wick))
    high = np.maximum(open_, close) * upper_wick
    low = np.minimum(open_, close) * lower_wick
    return open_, high, low, close


def _volume(
    draws: _Draws,
    log_paths: np.ndarray,
    bar_sd: np.ndarray,
    market_cap: np.ndarray,
    profile: _CoinProfile,
) -> np.ndarray:
    """USD volume: a turnover of market cap that rises with realised and expected volatility.

    The bar's agitation is measured against the coin's nominal sd (a fixed number, not the
    market's own average, which would change as the market is continued).
    """
    agitation = np.abs(np.diff(log_paths, axis=0, prepend=0.0)) + bar_sd
    activity = agitation / (_AGITATION_PER_SD * _nominal_sd(profile))
    noise = np.exp(_VOLUME_NOISE * draws.volume - _VOLUME_NOISE**2 / 2)
    return market_cap * profile.turnover * activity * noise


def _nominal_sd(profile: _CoinProfile) -> np.ndarray:
    """Each coin's hourly sd at unit volatility in no particular regime; the peg's for the
    stablecoin."""
    own = (profile.market_beta * _MARKET_VOL) ** 2 + profile.sector_vol**2 + profile.idio_vol**2
    return np.where(own > 0, np.sqrt(own), _STABLE_NOISE)


def _candles_frame(
    symbols: np.ndarray, timestamps: pd.DatetimeIndex, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Long frame sorted by symbol, then timestamp, from (hours, coins) arrays."""
    order = np.argsort(symbols)
    index = pd.MultiIndex.from_product([symbols[order], timestamps], names=[SYMBOL, TIMESTAMP])
    data = {name: values[:, order].T.ravel() for name, values in columns.items()}
    return pd.DataFrame(data, index=index).reset_index()
