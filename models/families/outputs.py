"""Where a family's served outputs are written, declared as data.

`models` imports no database code, so a family names its tables and maps columns; serving
keeps one writer per table and looks it up by `TableOutput.table`, so a family writing to a
table that already has a writer needs no new code outside its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableOutput:
    """A table the family's served frame (`ModelFamily.serve_at`) is written to.

    `columns` maps the names a table's writer reads to the frame's columns where they differ
    (each writer documents the names it reads). With `primary_only`, only the family's
    primary version line writes the table (a layer with a line per horizon writes the others
    to its other tables only).
    """

    table: str
    columns: Mapping[str, str] = field(default_factory=dict)
    primary_only: bool = False

    def column(self, name: str) -> str:
        """The served frame's column that the writer's input `name` is read from."""
        return self.columns.get(name, name)
