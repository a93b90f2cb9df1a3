"""Use cases behind the routes, one module per area, and the domain rules they share
(accounts and sessions, risk, watchlist changes, alerts, dashboards, health, retraining).

Each public function is one use case: its checks, its writes, the caller's activity record and
the commit, so that a route only parses, authorises, calls one of them and shapes the answer.
A use case that fails raises before its commit, and the request's session rolls back: nothing
half-written.
"""
