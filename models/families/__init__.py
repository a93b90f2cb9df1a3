"""The model families, one per analysis layer, behind one contract (`base.ModelFamily`).

The four built-in families are registered here, top-down; another is one module plus its
`register` call (`models.families.registry`).
"""

from models.errors import InsufficientData
from models.families.asset import AssetPriceFamily
from models.families.base import ModelFamily, TrainingData
from models.families.macro import MacroRegimeFamily
from models.families.outputs import TableOutput
from models.families.registry import (
    FAMILIES,
    context_layers,
    layer_of,
    ordered,
    register,
    unregister,
)
from models.families.sector import SectorRotationFamily
from models.families.timing import TradeTimingFamily

for _family in (MacroRegimeFamily, SectorRotationFamily, AssetPriceFamily, TradeTimingFamily):
    register(_family)

__all__ = [
    "FAMILIES",
    "AssetPriceFamily",
    "InsufficientData",
    "MacroRegimeFamily",
    "ModelFamily",
    "SectorRotationFamily",
    "TableOutput",
    "TradeTimingFamily",
    "TrainingData",
    "context_layers",
    "layer_of",
    "ordered",
    "register",
    "unregister",
]
