"""Figures a data scientist would rather look at than read, logged with each training run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

TOP_FEATURES = 20


def feature_importance_figure(importance: pd.Series, title: str) -> Figure:
    top = importance.head(TOP_FEATURES).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, max(3, 0.3 * len(top) + 1)))
    axes.barh(top.index.astype(str), top.to_numpy())
    axes.set_xlabel("gain")
    axes.set_title(title)
    figure.tight_layout()
    return figure


def reliability_figure(curves: Mapping[str, Iterable[Mapping[str, Any]]], title: str) -> Figure:
    """Observed frequency against predicted probability, one line per curve (bins as dicts)."""
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for label, bins in curves.items():
        points = [
            (b["mean_predicted"], b["observed_rate"])
            for b in bins
            if b["mean_predicted"] is not None and b["observed_rate"] is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o", label=label)
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed frequency")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def walk_forward_figure(fold_metrics: list[dict[str, Any]], metric: str, title: str) -> Figure:
    """The primary metric of model and baseline on each walk-forward test block."""
    figure, axes = plt.subplots(figsize=(7, 4))
    starts = [fold["test_start"][:10] for fold in fold_metrics]
    axes.plot(starts, [fold["model"][metric] for fold in fold_metrics], marker="o", label="model")
    axes.plot(
        starts, [fold["baseline"][metric] for fold in fold_metrics], marker="s", label="baseline"
    )
    axes.set_xlabel("test block start")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
