"""The dashboards' queries: each figure from one set-based query, none per row.

A user's view follows `get_user_ai_context`: their active personal watchlists, or the
default watchlist when they have none. Predictions a user sees are their own and those the
system made (`user_id IS NULL`), never another user's.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from db.schema import (
    AiModel,
    AiSuggestion,
    Cryptocurrency,
    CryptoSector,
    DominanceData,
    MarketRegimeAnalysis,
    MarketSentimentData,
    Prediction,
    SectorPerformance,
    SectorRotationAnalysis,
    SystemHealth,
    TradingSignal,
    User,
    UserActivity,
    UserSession,
    Watchlist,
    WatchlistAsset,
)
from models.layers import LAYERS

ACCURACY_WINDOW = timedelta(days=30)
Row = TypeVar("Row")


# --------------------------------------------------------------------------- market


def latest(session: Session, table: type[Row], moment: Any) -> Row | None:
    """The newest row of `table` by its time column `moment` (then id)."""
    return session.scalars(
        select(table).order_by(moment.desc(), table.id.desc()).limit(1)  # type: ignore[attr-defined]
    ).first()


def sector_board(session: Session) -> list[dict[str, Any]]:
    """Each sector's latest performance, strongest over 7 days first."""
    ranked = select(
        SectorPerformance,
        func.row_number()
        .over(
            partition_by=SectorPerformance.sector_id,
            order_by=(SectorPerformance.analysis_time.desc(), SectorPerformance.id.desc()),
        )
        .label("rank"),
    ).subquery()
    latest = aliased(SectorPerformance, ranked)
    rows = session.execute(
        select(latest, CryptoSector.name)
        .join(CryptoSector, CryptoSector.id == latest.sector_id)
        .where(ranked.c.rank == 1)
        .order_by(latest.performance_7d.desc().nulls_last(), CryptoSector.name)
    ).all()
    return [
        {
            "sector_id": row.sector_id,
            "name": name,
            "performance_24h": row.performance_24h,
            "performance_7d": row.performance_7d,
            "performance_30d": row.performance_30d,
            "analysis_time": row.analysis_time,
        }
        for row, name in rows
    ]


def latest_rotations(session: Session) -> list[dict[str, Any]]:
    """The rotations of the latest analysis, strongest first."""
    source, target = aliased(CryptoSector), aliased(CryptoSector)
    newest = select(func.max(SectorRotationAnalysis.analysis_time)).scalar_subquery()
    rows = session.execute(
        select(SectorRotationAnalysis, source.name, target.name)
        .outerjoin(source, source.id == SectorRotationAnalysis.from_sector_id)
        .outerjoin(target, target.id == SectorRotationAnalysis.to_sector_id)
        .where(SectorRotationAnalysis.analysis_time == newest)
        .order_by(SectorRotationAnalysis.rotation_strength.desc().nulls_last())
    ).all()
    return [
        {
            "from_sector": from_name,
            "to_sector": to_name,
            "rotation_strength": row.rotation_strength,
            "confidence_score": row.confidence_score,
            "analysis_time": row.analysis_time,
        }
        for row, from_name, to_name in rows
    ]


# --------------------------------------------------------------------------- a user's view


def watchlists_in_view(session: Session, user_id: int) -> list[Watchlist]:
    """The user's active personal watchlists, or the default one when they have none."""
    personal = and_(
        Watchlist.user_id == user_id,
        Watchlist.type == "personal",
        Watchlist.is_active.is_(True),
    )
    mine = aliased(Watchlist)
    has_personal = exists().where(
        mine.user_id == user_id, mine.type == "personal", mine.is_active.is_(True)
    )
    fallback = and_(Watchlist.type == "default", Watchlist.is_active.is_(True), ~has_personal)
    return list(
        session.scalars(
            select(Watchlist)
            .where(or_(personal, fallback))
            .order_by(Watchlist.sort_order, Watchlist.id)
        )
    )


def watchlist_assets(session: Session, watchlist_ids: list[int]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(WatchlistAsset, Cryptocurrency)
        .join(Cryptocurrency, Cryptocurrency.id == WatchlistAsset.crypto_id)
        .where(WatchlistAsset.watchlist_id.in_(watchlist_ids), WatchlistAsset.is_active.is_(True))
        .order_by(WatchlistAsset.watchlist_id, WatchlistAsset.position)
    ).all()
    return [
        {
            "watchlist_id": item.watchlist_id,
            "crypto_id": coin.id,
            "symbol": coin.symbol,
            "name": coin.name,
            "position": item.position,
            "weight": item.weight,
            "current_price": coin.current_price,
            "price_change_percentage_24h": coin.price_change_percentage_24h,
        }
        for item, coin in rows
    ]


def top_suggestions(
    session: Session, watchlist_ids: list[int], moment: datetime, limit: int
) -> list[dict[str, Any]]:
    """Pending, unexpired suggestions for these watchlists, most confident first."""
    rows = session.execute(
        select(AiSuggestion, Cryptocurrency.symbol, Watchlist.name)
        .join(Cryptocurrency, Cryptocurrency.id == AiSuggestion.crypto_id)
        .join(Watchlist, Watchlist.id == AiSuggestion.watchlist_id)
        .where(
            AiSuggestion.watchlist_id.in_(watchlist_ids),
            AiSuggestion.status == "pending",
            or_(AiSuggestion.expires_at.is_(None), AiSuggestion.expires_at > moment),
        )
        .order_by(AiSuggestion.confidence_score.desc(), AiSuggestion.id.desc())
        .limit(limit)
    ).all()
    return [_suggestion(row, symbol, name) for row, symbol, name in rows]


def top_signals(
    session: Session, crypto_ids: list[int], moment: datetime, limit: int
) -> list[dict[str, Any]]:
    """Active, unexpired signals on these coins, most confident first."""
    rows = session.execute(
        select(TradingSignal, Cryptocurrency.symbol)
        .join(Cryptocurrency, Cryptocurrency.id == TradingSignal.crypto_id)
        .where(
            TradingSignal.crypto_id.in_(crypto_ids),
            TradingSignal.status == "active",
            or_(TradingSignal.expires_at.is_(None), TradingSignal.expires_at > moment),
        )
        .order_by(TradingSignal.confidence_score.desc(), TradingSignal.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": row.id,
            "symbol": symbol,
            "signal_type": row.signal_type,
            "entry_price": row.entry_price,
            "target_price": row.target_price,
            "stop_loss": row.stop_loss,
            "confidence_score": row.confidence_score,
            "risk_level": row.risk_level,
            "risk_reward_ratio": row.risk_reward_ratio,
            "time_horizon_hours": row.time_horizon_hours,
            "generated_at": row.generated_at,
            "expires_at": row.expires_at,
        }
        for row, symbol in rows
    ]


def visible_to(user_id: int) -> ColumnElement[bool]:
    """The user's own predictions and the system's, never another user's."""
    return or_(Prediction.user_id == user_id, Prediction.user_id.is_(None))


def latest_predictions(
    session: Session, user_id: int, crypto_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """The newest price prediction of each coin, by crypto id."""
    ranked = (
        select(
            Prediction,
            func.row_number()
            .over(
                partition_by=Prediction.crypto_id,
                order_by=(Prediction.created_at.desc(), Prediction.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Prediction.crypto_id.in_(crypto_ids),
            Prediction.prediction_type == "price",
            visible_to(user_id),
        )
        .subquery()
    )
    latest = aliased(Prediction, ranked)
    rows = session.scalars(select(latest).where(ranked.c.rank == 1)).all()
    return {row.crypto_id: _prediction(row) for row in rows}


def accuracy_by_coin(
    session: Session, user_id: int, crypto_ids: list[int], since: datetime
) -> dict[int, dict[str, Any]]:
    """Realized accuracy of the visible predictions of each coin that came due since `since`."""
    rows = session.execute(
        _accuracy_columns(select(Prediction.crypto_id))
        .where(
            Prediction.crypto_id.in_(crypto_ids),
            Prediction.is_realized.is_(True),
            Prediction.target_datetime >= since,
            visible_to(user_id),
        )
        .group_by(Prediction.crypto_id)
    ).all()
    return {row.crypto_id: accuracy_figures(row._mapping) for row in rows}


def combined_accuracy(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from several groups' sums."""
    totals: dict[str, float] = defaultdict(float)
    for part in parts:
        for name in ("evaluated", "accurate", "sum_accuracy", "n_ape", "sum_ape"):
            totals[name] += part["sums"][name]
    return accuracy_figures(totals)


def accuracy_figures(sums: Any) -> dict[str, Any]:
    evaluated, n_ape = int(sums["evaluated"] or 0), int(sums["n_ape"] or 0)
    return {
        "evaluated": evaluated,
        "accurate": int(sums["accurate"] or 0),
        "hit_rate": (sums["accurate"] or 0) / evaluated if evaluated else None,
        "mean_accuracy_percentage": sums["sum_accuracy"] / evaluated if evaluated else None,
        "mean_abs_pct_error": sums["sum_ape"] / n_ape if n_ape else None,
        "sums": {
            "evaluated": evaluated,
            "accurate": int(sums["accurate"] or 0),
            "sum_accuracy": float(sums["sum_accuracy"] or 0),
            "n_ape": n_ape,
            "sum_ape": float(sums["sum_ape"] or 0),
        },
    }


# --------------------------------------------------------------------------- administrators


def user_counts(session: Session, moment: datetime) -> dict[str, int]:
    users = session.execute(
        select(
            func.count().label("total"),
            _count_where(User.role == "admin").label("admins"),
            _count_where(User.is_active.is_(True)).label("active"),
            _count_where(User.created_at >= moment - timedelta(days=7)).label("new_7d"),
            _count_where(User.last_login >= moment - timedelta(days=1)).label("logged_in_24h"),
        )
    ).one()
    sessions = session.execute(
        select(
            func.count().label("active_sessions"),
            func.count(func.distinct(UserSession.user_id)).label("users_with_sessions"),
        ).where(UserSession.is_active.is_(True), UserSession.expires_at > moment)
    ).one()
    return {
        name: int(value or 0) for name, value in {**users._mapping, **sessions._mapping}.items()
    }


def model_health(session: Session) -> list[dict[str, Any]]:
    """Per layer: how many versions in each status, and the active one's figures."""
    counts = session.execute(
        select(AiModel.model_type, AiModel.status, func.count()).group_by(
            AiModel.model_type, AiModel.status
        )
    ).all()
    active = session.scalars(select(AiModel).where(AiModel.status == "active")).all()
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for layer, status, count in counts:
        by_status[layer][status or "unknown"] = count
    serving = {row.model_type: row for row in active}
    return [
        {
            "layer": layer,
            "versions_by_status": by_status.get(layer, {}),
            "active": _model_summary(serving[layer]) if layer in serving else None,
        }
        for layer in LAYERS
    ]


def suggestion_queue(session: Session, limit: int) -> dict[str, Any]:
    """Suggestions waiting for review: counts per layer, the oldest's age, the newest few."""
    per_layer = session.execute(
        select(AiSuggestion.ai_layer, func.count(), func.min(AiSuggestion.created_at))
        .where(AiSuggestion.status == "pending")
        .group_by(AiSuggestion.ai_layer)
    ).all()
    newest = session.execute(
        select(AiSuggestion, Cryptocurrency.symbol, Watchlist.name)
        .join(Cryptocurrency, Cryptocurrency.id == AiSuggestion.crypto_id)
        .join(Watchlist, Watchlist.id == AiSuggestion.watchlist_id)
        .where(AiSuggestion.status == "pending")
        .order_by(AiSuggestion.created_at.desc(), AiSuggestion.id.desc())
        .limit(limit)
    ).all()
    oldest = [moment for _, _, moment in per_layer if moment is not None]
    return {
        "pending": sum(count for _, count, _ in per_layer),
        "pending_by_layer": {str(layer): count for layer, count, _ in per_layer},
        "oldest_pending_at": min(oldest) if oldest else None,
        "newest": [_suggestion(row, symbol, name) for row, symbol, name in newest],
    }


def recent_activities(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(UserActivity, User.email)
        .outerjoin(User, User.id == UserActivity.user_id)
        .order_by(UserActivity.created_at.desc(), UserActivity.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": row.id,
            "user_id": row.user_id,
            "email": email,
            "activity_type": row.activity_type,
            "action": row.action,
            "entity_type": row.entity_type,
            "entity_id": row.entity_id,
            "created_at": row.created_at,
        }
        for row, email in rows
    ]


def accuracy_by_version(session: Session, since: datetime) -> list[dict[str, Any]]:
    """Each model version's predictions made since `since` and how the realized ones did."""
    realized = Prediction.is_realized.is_(True)
    rows = session.execute(
        _accuracy_columns(
            select(
                Prediction.model_name,
                Prediction.model_version,
                func.count().label("predictions"),
                func.avg(cast(Prediction.confidence_score, Float)).label("mean_confidence"),
                func.max(Prediction.evaluated_at).label("last_evaluated_at"),
            ),
            only=realized,
        )
        .where(Prediction.created_at >= since)
        .group_by(Prediction.model_name, Prediction.model_version)
        .order_by(Prediction.model_name, Prediction.model_version.desc())
    ).all()
    return [
        {
            "model_name": row.model_name,
            "model_version": row.model_version,
            "predictions": row.predictions,
            "mean_confidence": row.mean_confidence,
            "last_evaluated_at": row.last_evaluated_at,
            **accuracy_figures(row._mapping),
        }
        for row in rows
    ]


# --------------------------------------------------------------------------- helpers


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _accuracy_columns(
    statement: Select[Any], only: ColumnElement[bool] | None = None
) -> Select[Any]:
    """Add the sums accuracy figures are made of; `only` picks the rows they count."""

    def where(value: Any) -> Any:
        return value if only is None else case((only, value))

    error_pct = Prediction.absolute_error / func.nullif(Prediction.actual_price, 0) * 100
    return statement.add_columns(
        func.count(where(Prediction.id)).label("evaluated"),
        func.coalesce(
            func.sum(where(case((Prediction.is_accurate.is_(True), 1), else_=0))), 0
        ).label("accurate"),
        func.coalesce(func.sum(where(cast(Prediction.accuracy_percentage, Float))), 0).label(
            "sum_accuracy"
        ),
        func.count(where(error_pct)).label("n_ape"),
        func.coalesce(func.sum(where(cast(error_pct, Float))), 0).label("sum_ape"),
    )


def _suggestion(row: AiSuggestion, symbol: str, watchlist_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "watchlist_id": row.watchlist_id,
        "watchlist_name": watchlist_name,
        "symbol": symbol,
        "suggestion_type": row.suggestion_type,
        "ai_layer": row.ai_layer,
        "confidence_score": row.confidence_score,
        "expected_return": row.expected_return,
        "risk_score": row.risk_score,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def _prediction(row: Prediction) -> dict[str, Any]:
    change = None
    if row.input_price:
        change = float((row.predicted_price - row.input_price) / row.input_price * 100)
    return {
        "id": row.id,
        "model_name": row.model_name,
        "model_version": row.model_version,
        "input_price": row.input_price,
        "predicted_price": row.predicted_price,
        "expected_change_pct": change,
        "confidence_score": row.confidence_score,
        "prediction_horizon": row.prediction_horizon,
        "target_datetime": row.target_datetime,
        "created_at": row.created_at,
        "is_realized": row.is_realized,
        "actual_price": row.actual_price,
        "is_accurate": row.is_accurate,
    }


def _model_summary(row: AiModel) -> dict[str, Any]:
    metrics = row.performance_metrics or {}
    live = metrics.get("live") or {}
    metric = metrics.get("primary_metric")
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "last_trained": row.last_trained,
        "last_prediction": row.last_prediction,
        "primary_metric": metric,
        "validation": (metrics.get("validation") or {}).get(metric),
        "baseline": (metrics.get("baseline") or {}).get(metric),
        "edge": metrics.get("edge"),
        "live_evaluated": live.get("n_evaluated"),
        "live_accuracy_rate": live.get("accuracy_rate"),
        "live_ece": live.get("ece"),
    }


# --------------------------------------------------------------------------- the dashboards


def admin_dashboard(session: Session, moment: datetime, window: timedelta) -> dict[str, Any]:
    return {
        "generated_at": moment,
        "users": user_counts(session, moment),
        "models": model_health(session),
        "latest_health": latest(session, SystemHealth, SystemHealth.check_time),
        "suggestions": suggestion_queue(session, limit=10),
        "recent_activities": recent_activities(session, limit=20),
        "accuracy_window_days": window.days,
        "accuracy_by_version": accuracy_by_version(session, moment - window),
    }


def professional_dashboard(session: Session, user_id: int, moment: datetime) -> dict[str, Any]:
    view = user_view(session, user_id, moment)
    return {
        "generated_at": moment,
        "regime": latest(session, MarketRegimeAnalysis, MarketRegimeAnalysis.analysis_time),
        "sentiment": latest(session, MarketSentimentData, MarketSentimentData.timestamp),
        "dominance": latest(session, DominanceData, DominanceData.timestamp),
        "sectors": sector_board(session),
        "rotations": latest_rotations(session),
        **view,
        "suggestions": top_suggestions(session, view["watchlist_ids"], moment, limit=10),
        "signals": top_signals(session, view["crypto_ids"], moment, limit=10),
    }


def user_view(session: Session, user_id: int, moment: datetime) -> dict[str, Any]:
    """The caller's watchlists with each coin's latest prediction and realized accuracy."""
    watchlists = watchlists_in_view(session, user_id)
    watchlist_ids = [watchlist.id for watchlist in watchlists]
    assets = watchlist_assets(session, watchlist_ids) if watchlist_ids else []
    crypto_ids = sorted({asset["crypto_id"] for asset in assets})
    predictions = latest_predictions(session, user_id, crypto_ids) if crypto_ids else {}
    since = moment - ACCURACY_WINDOW
    accuracy = accuracy_by_coin(session, user_id, crypto_ids, since) if crypto_ids else {}
    by_watchlist: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for asset in assets:
        coin = asset["crypto_id"]
        by_watchlist[asset["watchlist_id"]].append(
            {**asset, "latest_prediction": predictions.get(coin), "accuracy": accuracy.get(coin)}
        )
    return {
        "using_default_watchlist": any(watchlist.type == "default" for watchlist in watchlists),
        "watchlists": [
            {
                "id": watchlist.id,
                "name": watchlist.name,
                "type": watchlist.type,
                "assets": by_watchlist[watchlist.id],
            }
            for watchlist in watchlists
        ],
        "watchlist_ids": watchlist_ids,
        "crypto_ids": crypto_ids,
        "accuracy_window_days": ACCURACY_WINDOW.days,
        "accuracy": combined_accuracy(list(accuracy.values())),
    }


def casual_dashboard(session: Session, user_id: int, moment: datetime) -> dict[str, Any]:
    """The same facts as the professional view, fewer of them, in plain words."""
    regime = latest(session, MarketRegimeAnalysis, MarketRegimeAnalysis.analysis_time)
    sentiment = latest(session, MarketSentimentData, MarketSentimentData.timestamp)
    view = user_view(session, user_id, moment)
    assets = [asset for watchlist in view["watchlists"] for asset in watchlist["assets"]]
    coins = {asset["crypto_id"]: asset for asset in assets}
    suggestions = top_suggestions(session, view["watchlist_ids"], moment, limit=3)
    signals = top_signals(session, view["crypto_ids"], moment, limit=3)
    accuracy = view["accuracy"]
    return {
        "generated_at": moment,
        "market": _market_sentence(regime),
        "regime": regime.regime if regime else None,
        "mood": _mood(sentiment),
        "watchlists": [watchlist["name"] for watchlist in view["watchlists"]],
        "using_default_watchlist": view["using_default_watchlist"],
        "coins": [_casual_coin(asset) for asset in coins.values()],
        "ideas": [_suggestion_idea(row) for row in suggestions]
        + [_signal_idea(row) for row in signals],
        "track_record": _track_record(accuracy),
        "hit_rate": accuracy["hit_rate"],
    }


REGIME_WORDS = {"bull": "rising (bullish)", "bear": "falling (bearish)", "sideways": "sideways"}
SUGGESTION_WORDS = {
    "add": "Consider adding {symbol} to {watchlist}",
    "remove": "Consider removing {symbol} from {watchlist}",
    "rebalance": "Consider changing the weight of {symbol} in {watchlist}",
    "tier_change": "{symbol} may move to another tier in {watchlist}",
}
MOODS = ((25, "extreme fear"), (45, "fear"), (56, "neutral"), (76, "greed"), (101, "extreme greed"))


def _percent(value: Any) -> int:
    return round(float(value) * 100)


def _market_sentence(regime: MarketRegimeAnalysis | None) -> str:
    if regime is None:
        return "No market analysis yet."
    words = REGIME_WORDS.get(regime.regime, regime.regime)
    return f"The market looks {words} ({_percent(regime.confidence_score)}% confidence)."


def _mood(sentiment: MarketSentimentData | None) -> str | None:
    if sentiment is None or sentiment.fear_greed_index is None:
        return None
    index = float(sentiment.fear_greed_index)
    return next(label for bound, label in MOODS if index < bound)


def _casual_coin(asset: dict[str, Any]) -> dict[str, Any]:
    prediction = asset["latest_prediction"]
    coin = {"symbol": asset["symbol"], "name": asset["name"], "price": asset["current_price"]}
    if prediction is None or prediction["expected_change_pct"] is None:
        return {**coin, "outlook": None, "summary": f"{asset['symbol']}: no prediction yet."}
    change, hours = prediction["expected_change_pct"], prediction["prediction_horizon"]
    outlook = "up" if change > 0.5 else "down" if change < -0.5 else "flat"
    verb = {"up": "rise", "down": "fall", "flat": "stay about level"}[outlook]
    amount = "" if outlook == "flat" else f" about {abs(change):.1f}%"
    confidence = _percent(prediction["confidence_score"])
    summary = (
        f"{asset['symbol']}: expected to {verb}{amount} in the next {hours} hours "
        f"({confidence}% confidence)."
    )
    return {
        **coin,
        "outlook": outlook,
        "expected_change_pct": change,
        "horizon_hours": hours,
        "confidence_pct": confidence,
        "summary": summary,
    }


def _suggestion_idea(row: dict[str, Any]) -> dict[str, Any]:
    template = SUGGESTION_WORDS.get(row["suggestion_type"], "{symbol}: see {watchlist}")
    confidence = _percent(row["confidence_score"])
    text = template.format(symbol=row["symbol"], watchlist=row["watchlist_name"])
    return {
        "kind": "suggestion",
        "symbol": row["symbol"],
        "confidence_pct": confidence,
        "summary": f"{text} ({confidence}% confidence).",
    }


def _signal_idea(row: dict[str, Any]) -> dict[str, Any]:
    entry = float(row["entry_price"])
    gain = abs(float(row["target_price"]) - entry) / entry * 100
    loss = abs(entry - float(row["stop_loss"])) / entry * 100
    side = "buying" if row["signal_type"] == "long" else "selling (short)"
    confidence = _percent(row["confidence_score"])
    return {
        "kind": "signal",
        "symbol": row["symbol"],
        "confidence_pct": confidence,
        "summary": (
            f"{row['symbol']}: a {side} opportunity aiming for {gain:.1f}% with a "
            f"{loss:.1f}% stop, within {row['time_horizon_hours']} hours "
            f"({confidence}% confidence, {row['risk_level']} risk)."
        ),
    }


def _track_record(accuracy: dict[str, Any]) -> str:
    days = ACCURACY_WINDOW.days
    if not accuracy["evaluated"]:
        return f"No predictions for your coins have come due in the last {days} days."
    return (
        f"{accuracy['accurate']} of {accuracy['evaluated']} predictions for your coins "
        f"in the last {days} days were accurate."
    )
