"""Who acts in a use case, and the `user_activities` record that closes its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from db.schema import Base, User, UserActivity, UserSession
from serving.errors import Unauthorized
from serving.services.auth import Client, Identity

# A plain INSERT on the table, built once: the ORM's unit of work, its bulk insert for a mapped
# class and building the statement per call each cost `POST /predictions` more than the row
# itself (profiled).
_INSERT_ACTIVITY = insert(Base.metadata.tables[UserActivity.__tablename__])


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request (ids and role: what nearly every use case needs),
    with what its activities record."""

    identity: Identity
    client: Client

    @property
    def user_id(self) -> int:
        return self.identity.user_id

    @property
    def session_id(self) -> int:
        """The caller's login: the `user_sessions` row its token belongs to."""
        return self.identity.session_id

    @property
    def is_admin(self) -> bool:
        return self.identity.role == "admin"

    def account(self, session: Session) -> User:
        """The caller's `users` row, for the use cases that show or change it."""
        user = session.get(User, self.user_id)
        if user is None:
            raise Unauthorized("account deleted")
        return user

    def login(self, session: Session) -> UserSession:
        login = session.get(UserSession, self.session_id)
        if login is None:
            raise Unauthorized("invalid or revoked token")
        return login

    def record(
        self,
        session: Session,
        activity_type: str,
        action: str,
        entity_type: str | None = None,
        entity_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Insert a `user_activities` row in the caller's transaction."""
        session.execute(
            _INSERT_ACTIVITY,
            {
                "user_id": self.user_id,
                "activity_type": activity_type,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "details": details,
                "ip_address": self.client.ip_address,
                "user_agent": self.client.user_agent,
                "session_id": str(self.session_id),
            },
        )

    def owns(self, user_id: int | None) -> bool:
        return user_id is not None and user_id == self.user_id


def record_and_commit(
    session: Session,
    caller: Caller,
    activity_type: str,
    action: str,
    entity_type: str | None = None,
    entity_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """End a use case: its activity record joins its writes, and both commit together."""
    caller.record(session, activity_type, action, entity_type, entity_id, details)
    session.commit()
