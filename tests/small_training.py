"""Training settings small enough for tests: every family in tens of seconds on two cores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from training.presets import QUICK

LAYERS = ["macro", "sector", "asset", "timing"]
SETTINGS = QUICK


@dataclass(frozen=True)
class TrainedStore:
    """A PostgreSQL template holding a fresh synthetic market and four trained families."""

    template: str
    tracking_uri: str
    data_dir: Path
    last_candle: datetime
