"""Errors the model code raises on purpose, so callers can tell them from bugs."""


class InsufficientData(ValueError):
    """The data cannot support what was asked (no labelled rows, too short a history).

    Training skips such a family with this message rather than failing the whole run.
    """
