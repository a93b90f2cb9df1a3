"""Logged-in API users as the tests hold them."""

from __future__ import annotations

from dataclasses import dataclass

PASSWORD = "correct-horse-42"


@dataclass
class Account:
    id: int
    email: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
