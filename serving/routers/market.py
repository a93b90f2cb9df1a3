"""Layers 1 and 2: what the macro and sector models said, for any logged-in user.

Every list is a page sorted newest first (then id, newest first), so its first item is the
latest row. Regime, sentiment and dominance also answer their newest row alone at `/latest`
(404 while there is none), and `/macro/indicators/latest` the newest value of each indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, aliased

from db.schema import (
    Cryptocurrency,
    CryptoSector,
    CryptoSectorMapping,
    DominanceData,
    MacroIndicator,
    MarketRegimeAnalysis,
    MarketSentimentData,
    SectorPerformance,
    SectorRotationAnalysis,
)
from serving.deps import CurrentCaller, DbSession, PageParams, Period, TimeRange
from serving.errors import NotFound
from serving.lookups import find
from serving.pagination import equal_to, paginate, within
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

router = APIRouter(tags=["market"])

Regime = Literal["bull", "bear", "sideways"]
ALL_TIME = TimeRange(None, None)
Name = Annotated[str | None, Query(min_length=1, max_length=50)]


def _newest(session: Session, statement: Select[Any], what: str) -> Any:
    row = session.scalars(statement.limit(1)).first()
    if row is None:
        raise NotFound(f"no {what} has been recorded yet")
    return row


# ------------------------------------------------------------------------- layer 1: macro


def _regimes(period: TimeRange, regime: Regime | None = None) -> Select[Any]:
    table = MarketRegimeAnalysis
    statement = select(table)
    if regime is not None:
        statement = statement.where(table.regime == regime)
    statement = within(statement, table.analysis_time, period)
    return statement.order_by(table.analysis_time.desc(), table.id.desc())


def _sentiments(period: TimeRange) -> Select[Any]:
    table = MarketSentimentData
    statement = within(select(table), table.timestamp, period)
    return statement.order_by(table.timestamp.desc(), table.id.desc())


def _dominances(period: TimeRange) -> Select[Any]:
    table = DominanceData
    statement = within(select(table), table.timestamp, period)
    return statement.order_by(table.timestamp.desc(), table.id.desc())


@router.get("/macro/regime", response_model=Page[RegimeOut])
def regime_history(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    regime: Annotated[Regime | None, Query()] = None,
) -> Page[RegimeOut]:
    """Market regime analyses, newest first (`analysis_time`): the first item is the latest."""
    return paginate(session, _regimes(period, regime), page, RegimeOut)


@router.get("/macro/regime/latest", response_model=RegimeOut)
def latest_regime(_caller: CurrentCaller, session: DbSession) -> RegimeOut:
    """The newest market regime analysis; 404 while there is none."""
    return RegimeOut.model_validate(_newest(session, _regimes(ALL_TIME), "market regime"))


@router.get("/macro/sentiment", response_model=Page[SentimentOut])
def sentiment_history(
    _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[SentimentOut]:
    """Market sentiment (fear & greed), newest first (`timestamp`)."""
    return paginate(session, _sentiments(period), page, SentimentOut)


@router.get("/macro/sentiment/latest", response_model=SentimentOut)
def latest_sentiment(_caller: CurrentCaller, session: DbSession) -> SentimentOut:
    """The newest market sentiment row; 404 while there is none."""
    return SentimentOut.model_validate(_newest(session, _sentiments(ALL_TIME), "sentiment"))


@router.get("/macro/dominance", response_model=Page[DominanceOut])
def dominance_history(
    _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[DominanceOut]:
    """BTC, ETH and altcoin market-cap dominance in percent, newest first (`timestamp`)."""
    return paginate(session, _dominances(period), page, DominanceOut)


@router.get("/macro/dominance/latest", response_model=DominanceOut)
def latest_dominance(_caller: CurrentCaller, session: DbSession) -> DominanceOut:
    """The newest dominance row; 404 while there is none."""
    return DominanceOut.model_validate(_newest(session, _dominances(ALL_TIME), "dominance"))


def _indicators(
    statement: Select[Any], indicator_name: str | None, timeframe: str | None
) -> Select[Any]:
    return equal_to(
        statement,
        {MacroIndicator.indicator_name: indicator_name, MacroIndicator.timeframe: timeframe},
    )


@router.get("/macro/indicators", response_model=Page[IndicatorOut])
def indicators(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    indicator_name: Name = None,
    timeframe: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
) -> Page[IndicatorOut]:
    """Macro indicator values, newest first (`timestamp`), optionally of one name/timeframe."""
    statement = _indicators(select(MacroIndicator), indicator_name, timeframe)
    statement = within(statement, MacroIndicator.timestamp, period)
    statement = statement.order_by(MacroIndicator.timestamp.desc(), MacroIndicator.id.desc())
    return paginate(session, statement, page, IndicatorOut)


@router.get("/macro/indicators/latest", response_model=list[IndicatorOut])
def latest_indicators(
    _caller: CurrentCaller,
    session: DbSession,
    indicator_name: Name = None,
    timeframe: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
) -> list[IndicatorOut]:
    """The newest value of each (indicator_name, timeframe), sorted by name; one query."""
    newer = aliased(MacroIndicator)
    has_newer = (
        select(newer.id)
        .where(
            newer.indicator_name == MacroIndicator.indicator_name,
            newer.timeframe == MacroIndicator.timeframe,
            or_(
                newer.timestamp > MacroIndicator.timestamp,
                and_(newer.timestamp == MacroIndicator.timestamp, newer.id > MacroIndicator.id),
            ),
        )
        .exists()
    )
    statement = _indicators(select(MacroIndicator).where(~has_newer), indicator_name, timeframe)
    statement = statement.order_by(MacroIndicator.indicator_name, MacroIndicator.timeframe)
    return [IndicatorOut.model_validate(row) for row in session.scalars(statement)]


# ------------------------------------------------------------------------- layer 2: sectors


def _latest_performance(
    session: Session, sector_ids: Sequence[int]
) -> dict[int, SectorPerformanceOut]:
    """The newest `sector_performance` row of each sector, in one query."""
    if not sector_ids:
        return {}
    other = aliased(SectorPerformance)
    newest = (
        select(other.id)
        .where(other.sector_id == SectorPerformance.sector_id)
        .order_by(other.analysis_time.desc(), other.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.scalars(
        select(SectorPerformance).where(
            SectorPerformance.sector_id.in_(sector_ids), SectorPerformance.id == newest
        )
    )
    return {row.sector_id: SectorPerformanceOut.model_validate(row) for row in rows}


def _with_performance(session: Session, sectors: list[SectorOut]) -> list[SectorOut]:
    latest = _latest_performance(session, [sector.id for sector in sectors])
    for sector in sectors:
        sector.latest_performance = latest.get(sector.id)
    return sectors


@router.get("/sectors", response_model=Page[SectorOut])
def sectors(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    is_active: Annotated[bool | None, Query(), TRUE_OR_FALSE] = None,
) -> Page[SectorOut]:
    """Crypto sectors by name, each with its latest performance (null before any analysis)."""
    statement = select(CryptoSector)
    if is_active is not None:
        statement = statement.where(CryptoSector.is_active.is_(is_active))
    result = paginate(session, statement.order_by(CryptoSector.name), page, SectorOut)
    result.items = _with_performance(session, result.items)
    return result


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
    table = SectorRotationAnalysis
    statement = select(table)
    if sector_id is not None:
        statement = statement.where(
            or_(table.from_sector_id == sector_id, table.to_sector_id == sector_id)
        )
    statement = within(statement, table.analysis_time, period)
    statement = statement.order_by(table.analysis_time.desc(), table.id.desc())
    result = paginate(session, statement, page, RotationOut)
    named = {item.from_sector_id for item in result.items} | {
        item.to_sector_id for item in result.items
    }
    names: dict[int | None, str] = {
        sector_id: name
        for sector_id, name in session.execute(
            select(CryptoSector.id, CryptoSector.name).where(CryptoSector.id.in_(named - {None}))
        )
    }
    for item in result.items:
        item.from_sector = names.get(item.from_sector_id)
        item.to_sector = names.get(item.to_sector_id)
    return result


@router.get("/sectors/{sector_id}", response_model=SectorOut)
def sector(sector_id: PathId, _caller: CurrentCaller, session: DbSession) -> SectorOut:
    """One sector with its latest performance; 404 when unknown."""
    found = SectorOut.model_validate(find(session, CryptoSector, sector_id, "sector"))
    return _with_performance(session, [found])[0]


@router.get("/sectors/{sector_id}/performance", response_model=Page[SectorPerformanceOut])
def sector_performance(
    sector_id: PathId, _caller: CurrentCaller, session: DbSession, page: PageParams, period: Period
) -> Page[SectorPerformanceOut]:
    """A sector's performance history, newest first (`analysis_time`); 404 for no sector."""
    find(session, CryptoSector, sector_id, "sector")
    statement = select(SectorPerformance).where(SectorPerformance.sector_id == sector_id)
    statement = within(statement, SectorPerformance.analysis_time, period)
    statement = statement.order_by(
        SectorPerformance.analysis_time.desc(), SectorPerformance.id.desc()
    )
    return paginate(session, statement, page, SectorPerformanceOut)


@router.get("/sectors/{sector_id}/cryptos", response_model=Page[SectorCryptoOut])
def sector_cryptos(
    sector_id: PathId, _caller: CurrentCaller, session: DbSession, page: PageParams
) -> Page[SectorCryptoOut]:
    """The coins mapped to a sector (`crypto_sector_mapping`) by symbol; 404 for no sector."""
    find(session, CryptoSector, sector_id, "sector")
    statement = (
        select(CryptoSectorMapping)
        .join(Cryptocurrency, Cryptocurrency.id == CryptoSectorMapping.crypto_id)
        .where(CryptoSectorMapping.sector_id == sector_id)
        .order_by(Cryptocurrency.symbol, CryptoSectorMapping.id)
    )
    result = paginate(session, statement, page, SectorCryptoOut)
    coins = {
        coin_id: (symbol, name)
        for coin_id, symbol, name in session.execute(
            select(Cryptocurrency.id, Cryptocurrency.symbol, Cryptocurrency.name).where(
                Cryptocurrency.id.in_([item.crypto_id for item in result.items])
            )
        )
    }
    for item in result.items:
        item.symbol, item.name = coins[item.crypto_id]
    return result
