"""The four built-in analysis layers, top-down, and their default label horizons (hours).

Kept free of heavy imports so that the command line and the API can name the layers without
loading the estimators. The families are what counts: each declares its `layer_name` and
`default_horizon` (the built-in ones from here), and `models.families.FAMILIES` holds every
registered one; a test checks that the built-in families agree with these names.
"""

LAYERS = ("macro", "sector", "asset", "timing")
DEFAULT_HORIZONS = {"macro": 168, "sector": 168, "asset": 24, "timing": 24}
