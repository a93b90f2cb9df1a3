"""The registered families, one per analysis layer, top-down in the order of registration.

Training, analysis and the predictor loop over `FAMILIES`; nothing else lists the layers.
A family is registered after the layers it names `upstream`, so registration order is a
top-down order: a layer's context is always served before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from models.families.base import ModelFamily

F = TypeVar("F", bound=type[ModelFamily])

FAMILIES: dict[str, type[ModelFamily]] = {}


def register(family: F) -> F:
    """Add `family` as the lowest layer so far; usable as a class decorator."""
    layer = family.layer_name
    if layer in FAMILIES:
        raise ValueError(f"layer {layer!r} is already registered to {FAMILIES[layer].__name__}")
    missing = [upstream for upstream in family.upstream if upstream not in FAMILIES]
    if missing:
        raise ValueError(f"{family.__name__} needs unregistered layers: {', '.join(missing)}")
    FAMILIES[layer] = family
    return family


def unregister(layer: str) -> None:
    """Remove a layer that no registered family names upstream."""
    dependants = [name for name, family in FAMILIES.items() if layer in family.upstream]
    if dependants:
        raise ValueError(f"layer {layer!r} is upstream of {', '.join(dependants)}")
    del FAMILIES[layer]


def ordered(layers: Iterable[str]) -> list[str]:
    """`layers` top-down; ValueError naming any that no family registers."""
    wanted = set(layers)
    unknown = sorted(wanted - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown layers: {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    return [layer for layer in FAMILIES if layer in wanted]


def context_layers(layers: Iterable[str] | None = None) -> tuple[str, ...]:
    """The layers named upstream by `layers` (by default every registered one), top-down."""
    needed = {
        upstream
        for layer in (FAMILIES if layers is None else layers)
        for upstream in FAMILIES[layer].upstream
    }
    return tuple(layer for layer in FAMILIES if layer in needed)


def layer_of(name: str) -> str | None:
    """The layer whose version line the registered `name` is; None if no family registers it."""
    return next((layer for layer, family in FAMILIES.items() if family.registers(name)), None)
