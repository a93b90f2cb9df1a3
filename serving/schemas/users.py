"""Accounts, tokens, profiles and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.schemas.common import Input, Schema, StoredJson, UserJson

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class Registration(Input):
    email: str = Field(max_length=255, pattern=EMAIL_PATTERN, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=128, description="10+ characters, a digit.")
    first_name: str | None = Field(default=None, max_length=50)
    last_name: str | None = Field(default=None, max_length=50)


class Credentials(Input):
    email: str = Field(max_length=255)
    password: str = Field(max_length=128)


class RefreshRequest(Input):
    refresh_token: str = Field(min_length=1, max_length=255)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class UserOut(Schema):
    id: int
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    is_active: bool
    is_verified: bool
    is_premium: bool
    created_at: datetime | None
    last_login: datetime | None
    login_count: int | None
    preferences: StoredJson | None
    timezone: str | None
    language: str | None


class PasswordChange(Input):
    current: str = Field(max_length=128)
    new: str = Field(min_length=1, max_length=128)


class ProfileUpdate(Input):
    first_name: str | None = Field(default=None, max_length=50)
    last_name: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=50, examples=["Europe/Berlin"])
    language: str | None = Field(default=None, min_length=2, max_length=10)
    preferences: UserJson = None
    password: PasswordChange | None = Field(
        default=None, description="Changing it logs out every other session."
    )


class NotificationOut(Schema):
    id: int
    notification_type: str
    title: str
    message: str
    data: dict[str, Any] | None
    status: str | None
    priority: str | None
    scheduled_for: datetime | None
    read_at: datetime | None
    expires_at: datetime | None
    created_at: datetime | None
