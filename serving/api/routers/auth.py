"""Register, log in, refresh and log out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from serving.api.deps import AppSettings, CurrentCaller, DbSession, client_of
from serving.schemas.users import Credentials, RefreshRequest, Registration, TokenOut, UserOut
from serving.services import accounts, auth

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def register(body: Registration, request: Request, session: DbSession) -> UserOut:
    """Open a public account (administrators are made with `cryptopredict users create-admin`)."""
    return accounts.register(session, body, client_of(request))


@router.post("/login", response_model=TokenOut)
def login(
    body: Credentials,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
) -> TokenOut:
    """A new session's tokens. Failures are throttled per account and address (429 with
    `Retry-After`); the answer is never cached."""
    tokens = accounts.login(session, settings, body.email, body.password, client_of(request))
    return _token_out(tokens, response)


@router.post("/refresh", response_model=TokenOut)
def refresh(
    body: RefreshRequest, response: Response, session: DbSession, settings: AppSettings
) -> TokenOut:
    """Trade a refresh token for a new pair; the old pair stops working."""
    return _token_out(accounts.refresh(session, settings, body.refresh_token), response)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(caller: CurrentCaller, session: DbSession) -> Response:
    """Revoke the bearer token and its refresh token."""
    accounts.logout(session, caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _token_out(tokens: auth.Tokens, response: Response) -> TokenOut:
    """The token answer, marked so that no cache or proxy keeps it."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
    )
