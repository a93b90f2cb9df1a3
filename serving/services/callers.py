"""Who acts in a use case, and the `user_activities` record that closes its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from db.schema import User, UserActivity, UserSession
from serving.services.auth import Client


@dataclass
class Caller:
    """The authenticated user of a request, with what its activities record."""

    user: User
    login: UserSession
    client: Client

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    def record(
        self,
        session: Session,
        activity_type: str,
        action: str,
        entity_type: str | None = None,
        entity_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Insert a `user_activities` row in the caller's transaction (a plain INSERT: the ORM's
        unit of work cost `POST /predictions` more than the row itself, profiled)."""
        session.execute(
            insert(UserActivity).values(
                user_id=self.user.id,
                activity_type=activity_type,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                details=details,
                ip_address=self.client.ip_address,
                user_agent=self.client.user_agent,
                session_id=str(self.login.id),
            )
        )

    def owns(self, user_id: int | None) -> bool:
        return user_id is not None and user_id == self.user.id


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
