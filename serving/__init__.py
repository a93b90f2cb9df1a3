"""The service: `api` (HTTP) on top of `services` (use cases and the domain rules), the batch
job in `batch`, and `inference` below them all. `errors`, `lookups` and `schemas` are shared
by the layers; `tests/test_architecture.py` holds the direction of imports."""
