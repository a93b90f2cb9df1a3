"""Whether a process recorded by pid still runs on this host (Linux /proc where needed)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent has not collected the exit status yet.
    return proc_stat(pid)[:1] != ["Z"]


def process_started(pid: int) -> datetime | None:
    """When process `pid` started (Linux /proc), or None where that cannot be read."""
    fields = proc_stat(pid)
    try:
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(fields[19])
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first); [] if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
