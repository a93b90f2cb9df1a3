"""Layers 1 and 2: what the macro and sector models said, for any logged-in user.

Every list is a page sorted newest first (then id, newest first), so its first item is the
latest row. Regime, sentiment and dominance also answer their newest row alone at `/latest`
(404 while there is none), and `/macro/indicators/latest` the newest value of each indicator.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from serving.api.deps import CurrentCaller, DbSession, PageParams, Period
from serving.schemas.common import DIGITS, MAX_ID, TRUE_OR_FALSE, Page, PathId
from serving.schemas.market import (
    DominanceOut,
    IndicatorOut,
    RegimeOut,
    RotationOut,
    SectorCryptoOut,
    SectorOut,
    SectorPerformanceOut,
    SentimentOut,
)
from serving.services import market

router = APIRouter(tags=["market"])

Regime = Literal["bull", "bear", "sideways"]
Name = Annotated[str | None, Query(min_length=1, max_length=50)]
Timeframe = Annotated[str | None, Query(min_length=1, max_length=20)]

# ------------------------------------------------------------------------- layer 1: macro


@router.get("/macro/regime", response_model=Page[RegimeOut])
def regime_history(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    regime: Annotated[Regime | None, Query()] = None,
) -> Page[RegimeOut]:
    """Market regime analyses, newest first (`analysis_time`): the first item is the latest."""
    return market.regimes(session, page, period, regime)


@router.get("/macro/regime/latest", response_model=RegimeOut)
def latest_regime(_caller: CurrentCaller, session: DbSession) -> RegimeOut:
    """The newest market regime analysis; 404 while there is none."""
    return market.latest_regime(session)


@router.get("/macro/sentiment", response_model=Page[SentimentOut])
def sentiment_history(
    _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[SentimentOut]:
    """Market sentiment (fear & greed), newest first (`timestamp`)."""
    return market.sentiments(session, page, period)


@router.get("/macro/sentiment/latest", response_model=SentimentOut)
def latest_sentiment(_caller: CurrentCaller, session: DbSession) -> SentimentOut:
    """The newest market sentiment row; 404 while there is none."""
    return market.latest_sentiment(session)


@router.get("/macro/dominance", response_model=Page[DominanceOut])
def dominance_history(
    _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[DominanceOut]:
    """BTC, ETH and altcoin market-cap dominance in percent, newest first (`timestamp`)."""
    return market.dominances(session, page, period)


@router.get("/macro/dominance/latest", response_model=DominanceOut)
def latest_dominance(_caller: CurrentCaller, session: DbSession) -> DominanceOut:
    """The newest dominance row; 404 while there is none."""
    return market.latest_dominance(session)


@router.get("/macro/indicators", response_model=Page[IndicatorOut])
def indicators(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    indicator_name: Name = None,
    timeframe: Timeframe = None,
) -> Page[IndicatorOut]:
    """Macro indicator values, newest first (`timestamp`), optionally of one name/timeframe."""
    return market.indicators(session, page, period, indicator_name, timeframe)


@router.get("/macro/indicators/latest", response_model=list[IndicatorOut])
def latest_indicators(
    _caller: CurrentCaller,
    session: DbSession,
    indicator_name: Name = None,
    timeframe: Timeframe = None,
) -> list[IndicatorOut]:
    """The newest value of each (indicator_name, timeframe), sorted by name; one query."""
    return market.latest_indicators(session, indicator_name, timeframe)


# ------------------------------------------------------------------------- layer 2: sectors


@router.get("/sectors", response_model=Page[SectorOut])
def sectors(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    is_active: Annotated[bool | None, Query(), TRUE_OR_FALSE] = None,
) -> Page[SectorOut]:
    """Crypto sectors by name, each with its latest performance (null before any analysis)."""
    return market.sectors(session, page, is_active)


@router.get("/sectors/rotation", response_model=Page[RotationOut])
def rotation(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    sector_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Rotations from or to it."), DIGITS
    ] = None,
) -> Page[RotationOut]:
    """Sector rotation analyses (weakest → strongest sector), newest first (`analysis_time`)."""
    return market.rotations(session, page, period, sector_id)


@router.get("/sectors/{sector_id}", response_model=SectorOut)
def sector(sector_id: PathId, _caller: CurrentCaller, session: DbSession) -> SectorOut:
    """One sector with its latest performance; 404 when unknown."""
    return market.sector(session, sector_id)


@router.get("/sectors/{sector_id}/performance", response_model=Page[SectorPerformanceOut])
def sector_performance(
    sector_id: PathId, _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[SectorPerformanceOut]:
    """A sector's performance history, newest first (`analysis_time`); 404 for no sector."""
    return market.sector_performance(session, sector_id, page, period)


@router.get("/sectors/{sector_id}/cryptos", response_model=Page[SectorCryptoOut])
def sector_cryptos(
    sector_id: PathId, _caller: CurrentCaller, session: DbSession, page: PageParams
) -> Page[SectorCryptoOut]:
    """The coins mapped to a sector (`crypto_sector_mapping`) by symbol; 404 for no sector."""
    return market.sector_cryptos(session, sector_id, page)
