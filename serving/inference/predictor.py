"""Predictions of the active models at one hour: the code `analyze` and the API share.

Layers run top-down, one loop over the registered families (`models.families.FAMILIES`):
each family's `serve_at` is its whole serving computation, from the same `models` functions
training used. The context layers (those another family names `upstream`) are served first,
into a `MarketView`, whose context is written beside the lower layers' outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.families import FAMILIES, context_layers
from models.features import MARKET_FEATURE_HOURS
from models.panel import MarketPanel
from serving.inference.models_cache import LoadedModel, ModelLookup

NO_ASSET_MODEL = "no active asset model: train one with `cryptopredict train --layer asset`"


class ModelUnavailable(RuntimeError):
    """No active version of a family that the request needs."""


@dataclass(frozen=True)
class Served:
    """What one active version line served at an hour (`ModelFamily.serve_at`)."""

    model: LoadedModel
    frame: pd.DataFrame


@dataclass
class MarketView:
    """What the context layers serve at `as_of`, by layer: the context of the layers below."""

    as_of: pd.Timestamp
    served: dict[str, Served] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, str]:
        """The version of each context layer that served, by layer."""
        return {layer: served.model.version for layer, served in self.served.items()}

    @property
    def regime(self) -> dict[str, Any] | None:
        """The macro layer's regime at `as_of` (None without an active macro model)."""
        regime: dict[str, Any] | None = self.context(["macro"]).get("regime")
        return regime

    def context(self, layers: Iterable[str], sector: str | None = None) -> dict[str, Any]:
        """What `layers` say about a row of a coin in `sector` (or of the whole market)."""
        merged: dict[str, Any] = {}
        for layer in layers:
            served = self.served.get(layer)
            frame = None if served is None else served.frame
            merged.update(FAMILIES[layer].context(frame, sector))
        return merged


def recent(panel: MarketPanel, hours: int, as_of: pd.Timestamp | None = None) -> MarketPanel:
    """The panel up to `as_of` (default: its last hour) and `hours` hours before it."""
    end = panel.hours[-1] if as_of is None else as_of
    return panel.between(end - pd.Timedelta(hours=hours), end)


class Predictor:
    def __init__(self, models: ModelLookup) -> None:
        self.models = models

    def require(self, layer: str, horizon: int | None = None) -> LoadedModel:
        loaded = self.models.get(layer, horizon)
        if loaded is None:
            at = "" if horizon is None else f" at {horizon} hours"
            raise ModelUnavailable(
                f"no active {layer} model{at}: train one with `cryptopredict train --layer {layer}`"
            )
        return loaded

    def history_hours(self, layers: Iterable[str] | None = None) -> int:
        """Hours of candles before an hour that serving `layers` (by default every layer)
        reads: the most any active line of theirs, or of the layers above them, reads for its
        features (`ModelFamily.history_hours`, what its training rows read), and at least what
        the market indicators read. Less, and a served feature would differ from the one the
        model was trained on."""
        served = list(FAMILIES if layers is None else layers)
        lines = [
            self.models.get(layer, horizon)
            for layer in {*context_layers(served), *served}
            for horizon in self.models.horizons(layer)
        ]
        needed = [line.family.history_hours for line in lines if line is not None]
        return max([MARKET_FEATURE_HOURS, *needed])

    def market_view(self, panel: MarketPanel, layers: Iterable[str] | None = None) -> MarketView:
        """What the context layers serve at the panel's last hour: those `layers` name
        upstream (by default, those any family does), each by its active version if any."""
        view = MarketView(as_of=panel.hours[-1])
        for layer in context_layers(layers):
            loaded = self.models.get(layer)
            if loaded is not None:
                view.served[layer] = Served(loaded, loaded.family.serve_at(panel, view.as_of))
        return view

    def serve(
        self, panel: MarketPanel, view: MarketView, layer: str, horizon: int | None = None
    ) -> Served:
        """`layer` at `view.as_of` by its line at `horizon` (by default its primary line);
        ModelUnavailable if that line has no active version."""
        loaded = self.require(layer, horizon)
        known = view.served.get(layer)
        if known is not None and known.model.row_id == loaded.row_id:
            return known
        return Served(loaded, loaded.family.serve_at(panel, view.as_of))
