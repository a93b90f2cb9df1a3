"""The four model families, one per analysis layer, behind one contract (`base.ModelFamily`)."""

from models.errors import InsufficientData
from models.families.asset import AssetPriceFamily, is_line_name
from models.families.base import ModelFamily, TrainingData
from models.families.macro import MacroRegimeFamily
from models.families.sector import SectorRotationFamily
from models.families.timing import TradeTimingFamily
from models.layers import DEFAULT_HORIZONS, LAYERS

# Top-down: each layer may use the outputs of those before it.
FAMILIES: dict[str, type[ModelFamily]] = dict(
    zip(
        LAYERS,
        (MacroRegimeFamily, SectorRotationFamily, AssetPriceFamily, TradeTimingFamily),
        strict=True,
    )
)


def layer_of(name: str) -> str | None:
    """The layer whose version line the registered `name` is; None if no family registers it."""
    if is_line_name(name):
        return "asset"
    return next((layer for layer, family in FAMILIES.items() if family.name == name), None)


__all__ = [
    "DEFAULT_HORIZONS",
    "FAMILIES",
    "AssetPriceFamily",
    "InsufficientData",
    "MacroRegimeFamily",
    "ModelFamily",
    "SectorRotationFamily",
    "TradeTimingFamily",
    "TrainingData",
    "layer_of",
]
