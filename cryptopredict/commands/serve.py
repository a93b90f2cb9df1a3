"""`cryptopredict serve`: the FastAPI app under uvicorn."""

from __future__ import annotations

import typer
from rich.console import Console

from config.settings import get_settings
from cryptopredict.runtime import migrated_engine

console = Console(stderr=True)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help="Worker processes."),
) -> None:
    """Serve the API at http://HOST:PORT/api/v1, with OpenAPI docs at /docs.

    Refuses a database that is not migrated to the newest revision. Each worker loads the
    active models once and picks up a promotion or rollback without a restart.
    """
    import uvicorn

    migrated_engine().dispose()
    settings = get_settings()
    console.print(f"serving on http://{host}:{port}/api/v1 (docs at http://{host}:{port}/docs)")
    # uvicorn's own limits for slow or greedy senders: idle keep-alive connections close, and
    # a request head past the size is refused. Bodies are bounded by the app (BodyLimit).
    uvicorn.run(
        "serving.api.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
