"""The family registry: the built-in layers top-down, and what registration refuses."""

from __future__ import annotations

from typing import ClassVar

import pytest

from models.families import (
    FAMILIES,
    AssetPriceFamily,
    context_layers,
    layer_of,
    ordered,
    register,
    unregister,
)
from models.layers import DEFAULT_HORIZONS, LAYERS


def test_the_built_in_families_are_the_light_layer_names_top_down() -> None:
    assert tuple(FAMILIES) == LAYERS
    assert {layer: family.default_horizon for layer, family in FAMILIES.items()} == (
        DEFAULT_HORIZONS
    )
    assert all(family.layer_name == layer for layer, family in FAMILIES.items())


def test_context_layers_are_those_named_upstream_top_down() -> None:
    assert context_layers() == ("macro", "sector")
    assert context_layers(["asset"]) == ("macro", "sector")
    assert context_layers(["timing"]) == ("macro",)
    assert context_layers(["macro"]) == ()


def test_ordered_sorts_top_down_and_names_unknown_layers() -> None:
    assert ordered(["timing", "macro"]) == ["macro", "timing"]
    with pytest.raises(ValueError, match="unknown layers: weather"):
        ordered(["weather", "asset"])


def test_layer_of_knows_every_version_line() -> None:
    assert layer_of("macro_regime") == "macro"
    assert layer_of("asset_price") == layer_of("asset_price_168h") == "asset"
    assert layer_of("someone_elses_model") is None


class _Orphan(AssetPriceFamily):
    layer_name: ClassVar[str] = "orphan"
    upstream: ClassVar[tuple[str, ...]] = ("weather",)


def test_registration_refuses_a_taken_layer_or_an_unregistered_upstream() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(AssetPriceFamily)
    with pytest.raises(ValueError, match="needs unregistered layers: weather"):
        register(_Orphan)
    with pytest.raises(ValueError, match="upstream of"):
        unregister("macro")
    assert tuple(FAMILIES) == LAYERS


def test_a_family_names_the_output_it_writes_to_a_table() -> None:
    assert AssetPriceFamily.table_output("ai_suggestions").primary_only
    assert AssetPriceFamily.table_output("predictions").column("input_price") == "close"
    with pytest.raises(KeyError, match="trading_signals"):
        AssetPriceFamily.table_output("trading_signals")
