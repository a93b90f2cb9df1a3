"""`cryptopredict users ...`: accounts that cannot be made over the API."""

from __future__ import annotations

import re

import typer
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cryptopredict.runtime import migrated_engine
from db.schema import User, UserActivity
from serving.errors import ApiError
from serving.schemas.users import EMAIL_PATTERN
from serving.services import auth

app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
console = Console()
PASSWORD_VARIABLE = "CRYPTOPREDICT_ADMIN_PASSWORD"


@app.command("create-admin")
def create_admin(
    email: str = typer.Argument(..., help="The administrator's email (their login)."),
    password: str | None = typer.Option(
        None,
        "--password",
        envvar=PASSWORD_VARIABLE,
        show_envvar=True,
        help="Prefer the environment variable; asked for when neither is given.",
    ),
    promote: bool = typer.Option(
        False, "--promote", help="Make an existing account an administrator (password unchanged)."
    ),
) -> None:
    """Create an administrator account, or with --promote make an existing one admin.

    Registration's password policy applies. An email already registered is refused unless
    --promote is given.
    """
    if not re.fullmatch(EMAIL_PATTERN, email.strip()):
        raise ValueError(f"{email!r} is not an email address")
    with Session(migrated_engine()) as session:
        existing = session.scalars(
            select(User).where(func.lower(User.email) == email.strip().lower())
        ).one_or_none()
        if promote:
            if existing is None:
                raise ValueError(f"no account with email {email}; leave out --promote to create it")
            user, action = existing, "promote"
            user.role = "admin"
        else:
            secret = password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            try:
                user = auth.create_user(session, email, secret, role="admin")
            except ApiError as error:
                hint = "; use --promote to make it an admin" if existing is not None else ""
                raise ValueError(f"{error.detail}{hint}") from None
            action = "create"
        session.add(
            UserActivity(
                user_id=user.id,
                activity_type="user_admin",
                action=action,
                entity_type="user",
                entity_id=user.id,
                details={"via": "command line"},
            )
        )
        session.commit()
        verb = "is now an administrator" if action == "promote" else "created as administrator"
        console.print(f"{user.email} {verb} (user id {user.id})")
