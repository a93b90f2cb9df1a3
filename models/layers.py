"""The four analysis layers, top-down, and their default label horizons (hours).

Kept free of heavy imports so the command line can name the layers without loading the
estimators.
"""

LAYERS = ("macro", "sector", "asset", "timing")
DEFAULT_HORIZONS = {"macro": 168, "sector": 168, "asset": 24, "timing": 24}
