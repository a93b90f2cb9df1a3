"""Where the cluster path runs: a `LocalCluster` on this machine or a running scheduler.

An address is `local:N` (N worker processes here, one thread each, each with a memory
limit) or a scheduler's URL (`tcp://host:8786`, `tls://...`). A scheduler that does not
answer within `CONNECT_TIMEOUT` is reported as `ClusterUnavailable`, a ValueError, so the
command line prints it as one line and exits non-zero like any other refusal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from distributed import Client, LocalCluster

log = logging.getLogger(__name__)
LOCAL_PREFIX = "local:"
REMOTE = re.compile(r"^(tcp|tls|inproc|ucx)://[^\s/]+$")
CONNECT_TIMEOUT = "5s"
# What `--worker-memory` defaults to: the machine's memory shared among the workers.
AUTO_MEMORY = "auto"


class ClusterError(ValueError):
    """An address that names no cluster, or a cluster that cannot be reached."""


class ClusterUnavailable(ClusterError):
    """No scheduler answered at the address."""


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed `--cluster` value: `workers` for a local cluster, else a scheduler URL."""

    text: str
    workers: int | None = None

    @classmethod
    def parse(cls, text: str) -> ClusterAddress:
        value = text.strip()
        if value.startswith(LOCAL_PREFIX):
            count = value.removeprefix(LOCAL_PREFIX)
            if not count.isdigit() or int(count) < 1:
                raise ClusterError(f"cluster address {text!r}: local:N needs N >= 1 workers")
            return cls(value, workers=int(count))
        if not REMOTE.match(value):
            raise ClusterError(
                f"cluster address {text!r} is neither local:N nor a scheduler URL such as "
                "tcp://host:8786"
            )
        return cls(value)


@contextmanager
def connect(address: str, worker_memory: str = AUTO_MEMORY) -> Iterator[Client]:
    """A client of the cluster at `address`; a local cluster is closed on exit.

    `worker_memory` (e.g. "4GiB") is each local worker's limit. With Dask's defaults a
    worker moves the results it holds to disk once they pass 60 % of it (or the process
    70 %), pauses new tasks at 80 % and is restarted by its nanny at 95 %, its tasks rerun
    elsewhere. A remote cluster's workers keep the limit they were started with.
    """
    parsed = ClusterAddress.parse(address)
    _quiet_distributed()
    if parsed.workers is not None:
        with (
            LocalCluster(
                n_workers=parsed.workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=worker_memory,
                dashboard_address=":0",  # any free port: several runs may share a machine
            ) as cluster,
            Client(cluster) as client,
        ):
            log.info(
                "local cluster of %d workers, dashboard %s", parsed.workers, client.dashboard_link
            )
            yield client
        return
    try:
        client = Client(parsed.text, timeout=CONNECT_TIMEOUT)
    except OSError as error:  # distributed raises OSError (TimeoutError) when none answers
        raise ClusterUnavailable(
            f"no Dask scheduler answered at {parsed.text} within {CONNECT_TIMEOUT}: "
            "start one (`dask scheduler`) or check --cluster / DASK_SCHEDULER_ADDRESS"
        ) from error
    with client:
        yield client


def _quiet_distributed() -> None:
    """Dask's scheduler and nannies narrate every worker and connection at INFO, dozens of
    lines a run; the commands report their own progress. Warnings still show, and everything
    does when the root logger is at DEBUG."""
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("distributed").setLevel(logging.WARNING)
