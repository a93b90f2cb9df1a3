"""Layers 1 and 2: what the macro and sector models said.

Every list is a page sorted newest first (then id, newest first), so its first item is the
latest row; each `latest_*` is that newest row alone (404 while there is none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from serving.errors import NotFound
from serving.lookups import find
from serving.schemas.common import Page
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
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within

ALL_TIME = TimeRange(None, None)

# ------------------------------------------------------------------------- layer 1: macro


def regimes(
    session: Session, page: Paging, period: TimeRange, regime: str | None = None
) -> Page[RegimeOut]:
    return paginate(session, _regimes(period, regime), page, RegimeOut)


def latest_regime(session: Session) -> RegimeOut:
    return RegimeOut.model_validate(_newest(session, _regimes(ALL_TIME), "market regime"))


def sentiments(session: Session, page: Paging, period: TimeRange) -> Page[SentimentOut]:
    return paginate(session, _sentiments(period), page, SentimentOut)


def latest_sentiment(session: Session) -> SentimentOut:
    return SentimentOut.model_validate(_newest(session, _sentiments(ALL_TIME), "sentiment"))


def dominances(session: Session, page: Paging, period: TimeRange) -> Page[DominanceOut]:
    return paginate(session, _dominances(period), page, DominanceOut)


def latest_dominance(session: Session) -> DominanceOut:
    return DominanceOut.model_validate(_newest(session, _dominances(ALL_TIME), "dominance"))


def indicators(
    session: Session,
    page: Paging,
    period: TimeRange,
    indicator_name: str | None = None,
    timeframe: str | None = None,
) -> Page[IndicatorOut]:
    """Macro indicator values, newest first (`timestamp`), optionally of one name/timeframe."""
    statement = _indicators(select(MacroIndicator), indicator_name, timeframe)
    statement = within(statement, MacroIndicator.timestamp, period)
    statement = statement.order_by(MacroIndicator.timestamp.desc(), MacroIndicator.id.desc())
    return paginate(session, statement, page, IndicatorOut)


def latest_indicators(
    session: Session, indicator_name: str | None = None, timeframe: str | None = None
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


def _newest(session: Session, statement: Select[Any], what: str) -> Any:
    row = session.scalars(statement.limit(1)).first()
    if row is None:
        raise NotFound(f"no {what} has been recorded yet")
    return row


def _regimes(period: TimeRange, regime: str | None = None) -> Select[Any]:
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


def _indicators(
    statement: Select[Any], indicator_name: str | None, timeframe: str | None
) -> Select[Any]:
    return equal_to(
        statement,
        {MacroIndicator.indicator_name: indicator_name, MacroIndicator.timeframe: timeframe},
    )


# ------------------------------------------------------------------------- layer 2: sectors


def sectors(session: Session, page: Paging, is_active: bool | None = None) -> Page[SectorOut]:
    """Crypto sectors by name, each with its latest performance (null before any analysis)."""
    statement = select(CryptoSector)
    if is_active is not None:
        statement = statement.where(CryptoSector.is_active.is_(is_active))
    result = paginate(session, statement.order_by(CryptoSector.name), page, SectorOut)
    result.items = _with_performance(session, result.items)
    return result


def rotations(
    session: Session, page: Paging, period: TimeRange, sector_id: int | None = None
) -> Page[RotationOut]:
    """Sector rotation analyses, newest first, with the names of the sectors they join."""
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


def sector(session: Session, sector_id: int) -> SectorOut:
    found = SectorOut.model_validate(find(session, CryptoSector, sector_id, "sector"))
    return _with_performance(session, [found])[0]


def sector_performance(
    session: Session, sector_id: int, page: Paging, period: TimeRange
) -> Page[SectorPerformanceOut]:
    find(session, CryptoSector, sector_id, "sector")
    statement = select(SectorPerformance).where(SectorPerformance.sector_id == sector_id)
    statement = within(statement, SectorPerformance.analysis_time, period)
    statement = statement.order_by(
        SectorPerformance.analysis_time.desc(), SectorPerformance.id.desc()
    )
    return paginate(session, statement, page, SectorPerformanceOut)


def sector_cryptos(session: Session, sector_id: int, page: Paging) -> Page[SectorCryptoOut]:
    """The coins mapped to a sector (`crypto_sector_mapping`), by symbol."""
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


def _with_performance(session: Session, found: list[SectorOut]) -> list[SectorOut]:
    latest = _latest_performance(session, [item.id for item in found])
    for item in found:
        item.latest_performance = latest.get(item.id)
    return found
