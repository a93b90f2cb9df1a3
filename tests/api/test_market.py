"""Layers 1 and 2 over HTTP: regime, sentiment, dominance, indicators and sectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from accounts import Account
from builders import coin, insert

API = "/api/v1"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _hours(n: int) -> datetime:
    return T0 + timedelta(hours=n)


def _sector_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT id FROM crypto_sectors WHERE name = :name"), {"name": name}
        ).scalar_one()


def _ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    "path",
    [
        "/macro/regime",
        "/macro/regime/latest",
        "/macro/sentiment",
        "/macro/sentiment/latest",
        "/macro/dominance",
        "/macro/dominance/latest",
        "/macro/indicators",
        "/macro/indicators/latest",
        "/sectors",
        "/sectors/rotation",
        "/sectors/1",
        "/sectors/1/performance",
        "/sectors/1/cryptos",
    ],
)
def test_market_routes_need_a_token(client: TestClient, path: str) -> None:
    response = client.get(API + path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_regime_history_is_newest_first_filtered_and_paged(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    assert client.get(f"{API}/macro/regime/latest", headers=alice.headers).status_code == 404
    with api_engine.begin() as connection:
        ids = [
            insert(
                connection,
                "market_regime_analysis",
                regime=regime,
                confidence_score=confidence,
                indicators=json.dumps({"breadth": 0.6}),
                analysis_time=_hours(hour),
            )
            for regime, confidence, hour in (("bull", 0.61, 0), ("bear", 0.7, 2), ("bull", 0.8, 1))
        ]
    everything = client.get(f"{API}/macro/regime", headers=alice.headers)
    assert _ids(everything) == [ids[1], ids[2], ids[0]]
    assert everything.json()["total"] == 3
    first = everything.json()["items"][0]
    assert first["regime"] == "bear" and first["confidence_score"] == 0.7
    assert first["indicators"] == {"breadth": 0.6}

    bulls = client.get(f"{API}/macro/regime?regime=bull", headers=alice.headers)
    assert _ids(bulls) == [ids[2], ids[0]]
    window = client.get(
        f"{API}/macro/regime",
        params={"since": _hours(1).isoformat(), "until": _hours(2).isoformat()},
        headers=alice.headers,
    )
    assert _ids(window) == [ids[2]]
    second_page = client.get(f"{API}/macro/regime?limit=1&offset=1", headers=alice.headers)
    assert _ids(second_page) == [ids[2]]
    assert second_page.json()["total"] == 3

    latest = client.get(f"{API}/macro/regime/latest", headers=alice.headers)
    assert latest.status_code == 200 and latest.json()["id"] == ids[1]


@pytest.mark.parametrize(
    "query",
    [
        "regime=crab",
        "limit=0",
        "limit=501",
        "offset=-1",
        "since=yesterday",
        "since=2026-03-01T00:00:00",
        "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z",
    ],
)
def test_regime_history_refuses_bad_queries(client: TestClient, alice: Account, query: str) -> None:
    assert client.get(f"{API}/macro/regime?{query}", headers=alice.headers).status_code == 422


def test_sentiment_and_dominance_history_and_latest(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    for path in ("sentiment", "dominance"):
        empty = client.get(f"{API}/macro/{path}/latest", headers=alice.headers)
        assert empty.status_code == 404
        assert "recorded" in empty.json()["detail"]
    with api_engine.begin() as connection:
        old = insert(connection, "market_sentiment_data", fear_greed_index=20, timestamp=_hours(0))
        new = insert(
            connection,
            "market_sentiment_data",
            fear_greed_index=71.5,
            social_sentiment=0.25,
            timestamp=_hours(5),
        )
        dominance = [
            insert(
                connection,
                "dominance_data",
                btc_dominance=btc,
                eth_dominance=18,
                alt_dominance=82 - btc,
                timestamp=_hours(hour),
            )
            for btc, hour in ((50, 3), (52.25, 4))
        ]
    assert _ids(client.get(f"{API}/macro/sentiment", headers=alice.headers)) == [new, old]
    since = client.get(
        f"{API}/macro/sentiment", params={"since": _hours(1).isoformat()}, headers=alice.headers
    )
    assert _ids(since) == [new]
    latest = client.get(f"{API}/macro/sentiment/latest", headers=alice.headers).json()
    assert latest["fear_greed_index"] == 71.5 and latest["social_sentiment"] == 0.25

    history = client.get(f"{API}/macro/dominance", headers=alice.headers)
    assert _ids(history) == dominance[::-1]
    until = client.get(
        f"{API}/macro/dominance", params={"until": _hours(4).isoformat()}, headers=alice.headers
    )
    assert _ids(until) == [dominance[0]]
    newest = client.get(f"{API}/macro/dominance/latest", headers=alice.headers).json()
    assert newest["btc_dominance"] == 52.25 and newest["alt_dominance"] == 29.75


def test_indicators_filter_by_name_and_timeframe_and_latest_per_indicator(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    rows = [
        ("realized_vol_24h", 0.3, "24h", 0),
        ("realized_vol_24h", 0.4, "24h", 1),
        ("realized_vol_168h", 0.2, "168h", 1),
        ("breadth", 0.5, "1h", 1),
        ("breadth", 0.55, "1h", 1),  # same hour: the later row wins
    ]
    with api_engine.begin() as connection:
        ids = [
            insert(
                connection,
                "macro_indicators",
                indicator_name=name,
                value=value,
                timeframe=timeframe,
                metadata=json.dumps({"source": "test"}),
                timestamp=_hours(hour),
            )
            for name, value, timeframe, hour in rows
        ]
    everything = client.get(f"{API}/macro/indicators", headers=alice.headers)
    assert _ids(everything) == [ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert everything.json()["items"][0]["metadata"] == {"source": "test"}
    named = client.get(
        f"{API}/macro/indicators?indicator_name=realized_vol_24h", headers=alice.headers
    )
    assert _ids(named) == [ids[1], ids[0]]
    assert named.json()["items"][0]["value"] == 0.4
    assert _ids(client.get(f"{API}/macro/indicators?timeframe=168h", headers=alice.headers)) == [
        ids[2]
    ]

    latest = client.get(f"{API}/macro/indicators/latest", headers=alice.headers)
    assert latest.status_code == 200
    assert [(row["indicator_name"], row["value"]) for row in latest.json()] == [
        ("breadth", 0.55),
        ("realized_vol_168h", 0.2),
        ("realized_vol_24h", 0.4),
    ]
    one = client.get(f"{API}/macro/indicators/latest?timeframe=24h", headers=alice.headers)
    assert [row["id"] for row in one.json()] == [ids[1]]
    too_long = client.get(
        f"{API}/macro/indicators?indicator_name={'x' * 51}", headers=alice.headers
    )
    assert too_long.status_code == 422


def test_sectors_carry_their_latest_performance(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    defi, meme = _sector_id(api_engine, "DeFi"), _sector_id(api_engine, "Meme Coins")
    with api_engine.begin() as connection:
        insert(
            connection,
            "sector_performance",
            sector_id=defi,
            performance_24h=1.5,
            analysis_time=_hours(0),
        )
        newest = insert(
            connection,
            "sector_performance",
            sector_id=defi,
            performance_24h=-2.25,
            analysis_time=_hours(1),
        )
        connection.execute(
            text("UPDATE crypto_sectors SET is_active = false WHERE id = :id"), {"id": meme}
        )
    response = client.get(f"{API}/sectors", headers=alice.headers)
    assert response.status_code == 200
    sectors = response.json()["items"]
    assert response.json()["total"] == 10  # the seeded sectors
    names = [sector["name"] for sector in sectors]
    assert names == sorted(names)
    by_name = {sector["name"]: sector for sector in sectors}
    assert by_name["DeFi"]["latest_performance"]["id"] == newest
    assert by_name["DeFi"]["latest_performance"]["performance_24h"] == -2.25
    assert by_name["Bitcoin"]["latest_performance"] is None

    active = client.get(f"{API}/sectors?is_active=true", headers=alice.headers).json()
    assert active["total"] == 9 and "Meme Coins" not in [s["name"] for s in active["items"]]

    one = client.get(f"{API}/sectors/{defi}", headers=alice.headers)
    assert one.status_code == 200
    assert one.json()["name"] == "DeFi" and one.json()["latest_performance"]["id"] == newest


def test_unknown_sector_is_404_and_a_non_integer_id_422(client: TestClient, alice: Account) -> None:
    for suffix in ("", "/performance", "/cryptos"):
        missing = client.get(f"{API}/sectors/999999{suffix}", headers=alice.headers)
        assert missing.status_code == 404
        assert missing.json()["detail"] == "sector 999999 not found"
        assert client.get(f"{API}/sectors/defi{suffix}", headers=alice.headers).status_code == 422


def test_sector_performance_history_newest_first(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    defi, bitcoin = _sector_id(api_engine, "DeFi"), _sector_id(api_engine, "Bitcoin")
    with api_engine.begin() as connection:
        ids = [
            insert(
                connection,
                "sector_performance",
                sector_id=defi,
                performance_7d=hour,
                analysis_time=_hours(hour),
            )
            for hour in (0, 2, 1)
        ]
        insert(connection, "sector_performance", sector_id=bitcoin, analysis_time=_hours(3))
    history = client.get(f"{API}/sectors/{defi}/performance", headers=alice.headers)
    assert _ids(history) == [ids[1], ids[2], ids[0]]
    assert history.json()["items"][0]["performance_7d"] == 2.0
    since = client.get(
        f"{API}/sectors/{defi}/performance",
        params={"since": _hours(1).isoformat()},
        headers=alice.headers,
    )
    assert _ids(since) == [ids[1], ids[2]]


def test_rotation_is_not_taken_for_a_sector_id_and_names_both_sectors(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    defi, meme, bitcoin = (
        _sector_id(api_engine, name) for name in ("DeFi", "Meme Coins", "Bitcoin")
    )
    with api_engine.begin() as connection:
        first = insert(
            connection,
            "sector_rotation_analysis",
            from_sector_id=meme,
            to_sector_id=defi,
            rotation_strength=0.4,
            confidence_score=0.66,
            analysis_time=_hours(0),
        )
        second = insert(
            connection,
            "sector_rotation_analysis",
            from_sector_id=defi,
            to_sector_id=bitcoin,
            rotation_strength=0.2,
            confidence_score=0.55,
            analysis_time=_hours(1),
        )
    response = client.get(f"{API}/sectors/rotation", headers=alice.headers)
    assert _ids(response) == [second, first]
    newest = response.json()["items"][0]
    assert (newest["from_sector"], newest["to_sector"]) == ("DeFi", "Bitcoin")
    assert newest["rotation_strength"] == 0.2 and newest["confidence_score"] == 0.55
    about_meme = client.get(f"{API}/sectors/rotation?sector_id={meme}", headers=alice.headers)
    assert _ids(about_meme) == [first]
    about_defi = client.get(f"{API}/sectors/rotation?sector_id={defi}", headers=alice.headers)
    assert _ids(about_defi) == [second, first]


def test_sector_cryptos_list_the_mapped_coins_by_symbol(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    defi = _sector_id(api_engine, "DeFi")
    with api_engine.begin() as connection:
        uni, aave, btc = (coin(connection, symbol) for symbol in ("UNI", "AAVE", "BTC"))
        insert(connection, "crypto_sector_mapping", crypto_id=uni, sector_id=defi)
        insert(
            connection,
            "crypto_sector_mapping",
            crypto_id=aave,
            sector_id=defi,
            allocation_percentage=60,
            is_primary_sector=False,
        )
        insert(
            connection,
            "crypto_sector_mapping",
            crypto_id=btc,
            sector_id=_sector_id(api_engine, "Bitcoin"),
        )
    response = client.get(f"{API}/sectors/{defi}/cryptos", headers=alice.headers)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(item["symbol"], item["crypto_id"]) for item in items] == [("AAVE", aave), ("UNI", uni)]
    assert items[0]["allocation_percentage"] == 60.0 and items[0]["is_primary_sector"] is False
    assert items[1]["name"] == "Uni" and items[1]["allocation_percentage"] == 100.0
    paged = client.get(f"{API}/sectors/{defi}/cryptos?limit=1&offset=1", headers=alice.headers)
    assert [item["symbol"] for item in paged.json()["items"]] == ["UNI"]
    assert paged.json()["total"] == 2
