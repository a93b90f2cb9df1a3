"""Layer 4: trading signals, their executions and the caller's risk profile.

Money amounts (`position_size`, `portfolio_value`, `max_position_size`) are in the quote
currency of the prices (USD for USDT pairs); prices are per coin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from serving.schemas.common import Input, Schema, StoredJson, UserJson

# NUMERIC(30, 8) and NUMERIC(20, 8) hold 22 and 12 integer digits.
MAX_AMOUNT = 1e15
MAX_PRICE = 1e11
# Amounts are stored with 8 decimal places: anything smaller would be stored as 0.
MIN_AMOUNT = 1e-8


class SignalOut(Schema):
    id: int
    crypto_id: int
    symbol: str | None = None
    signal_type: str = Field(description="long or short.")
    entry_price: float
    target_price: float
    stop_loss: float
    confidence_score: float = Field(description="Calibrated P(target is hit before the stop).")
    risk_level: str
    risk_reward_ratio: float | None
    time_horizon_hours: int | None
    ai_analysis: dict[str, Any] | None
    market_context: dict[str, Any] | None
    status: str | None
    generated_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime | None


class ExecutionRequest(Input):
    """A trade the caller placed on a signal, checked against their risk profile."""

    position_size: float = Field(
        ge=MIN_AMOUNT,
        le=MAX_AMOUNT,
        description="Value of the position in the quote currency (USD).",
    )
    portfolio_value: float = Field(
        ge=MIN_AMOUNT,
        le=MAX_AMOUNT,
        description="The caller's whole portfolio in the quote currency; the position may not "
        "exceed it, and risk limits are fractions of it.",
    )
    execution_price: float | None = Field(
        default=None,
        ge=MIN_AMOUNT,
        le=MAX_PRICE,
        description="Fill price; default the signal's entry.",
    )
    execution_type: Literal["manual"] = "manual"


class ExecutionOut(Schema):
    id: int
    signal_id: int
    user_id: int
    execution_price: float | None
    position_size: float | None
    portfolio_percentage: float | None = Field(description="position_size / portfolio_value %.")
    execution_type: str | None
    status: str | None
    execution_details: dict[str, Any] | None
    executed_at: datetime | None


class CryptoExposure(BaseModel):
    crypto_id: int
    symbol: str
    executions: int
    position: float = Field(description="Sum of the open positions' values.")
    risk: float = Field(description="What the open positions lose if every stop is hit.")


class Exposure(BaseModel):
    """The caller's open executions: not cancelled, on signals still active."""

    open_executions: int
    total_position: float
    total_risk: float
    by_crypto: list[CryptoExposure]


class RiskProfileOut(BaseModel):
    user_id: int
    max_position_size: float = Field(description="Largest single position (quote currency).")
    max_portfolio_risk: float = Field(
        description="Largest fraction of the portfolio all open positions may lose at their stops."
    )
    risk_rules: StoredJson
    risk_metrics: dict[str, Any]
    last_calculated: datetime | None
    updated_at: datetime | None
    current_exposure: Exposure


class RiskProfileUpdate(Input):
    max_position_size: float | None = Field(default=None, ge=MIN_AMOUNT, le=MAX_AMOUNT)
    max_portfolio_risk: float | None = Field(default=None, ge=0, le=1)
    risk_rules: UserJson = None

    @model_validator(mode="after")
    def _changes_something(self) -> RiskProfileUpdate:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("give max_position_size, max_portfolio_risk or risk_rules")
        return self
