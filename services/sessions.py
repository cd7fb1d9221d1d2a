"""Sign-in sessions: a short access token plus a refresh token that rotates on every use.

A session is a family of refresh tokens. Each refresh retires the token presented and issues its
successor in the same family; presenting a retired token again means it was copied, so the whole
family is revoked and neither the copy nor its successor works any more.

A session has ended once any of its tokens is revoked. Its access tokens carry its id (``sid``),
and a trigger announces each revocation as it commits (auth/revocations.py), so they stop working
at once too.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from auth.tokens import AccessTokens, new_secret_token, token_digest
from db.models import RefreshToken, User
from db.rows import Actor
from db.states import UserStatus
from services.errors import Refusal, Unauthenticated

INVALID_REFRESH_TOKEN = "This session has ended; sign in again."  # noqa: S105


class SessionEnded(Unauthenticated):
    """A refused refresh token whose use ended its session: it was a replayed copy, or its
    account is no longer active."""


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives


@dataclass(frozen=True)
class Client:
    """Who is on the other end, kept with the session for the user's own review."""

    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SessionPolicy:
    access_tokens: AccessTokens
    refresh_lifetime: timedelta


async def _issue(
    session: AsyncSession,
    *,
    user: Actor,
    family_id: uuid.UUID,
    policy: SessionPolicy,
    client: Client,
) -> IssuedTokens:
    refresh_token = new_secret_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=token_digest(refresh_token),
            expires_at=datetime.now(UTC) + policy.refresh_lifetime,
            ip_address=client.ip_address,
            user_agent=(client.user_agent or "")[:400] or None,
        )
    )
    await session.flush()
    return IssuedTokens(
        access_token=policy.access_tokens.issue(user.id, user.roles, session_id=family_id),
        refresh_token=refresh_token,
        expires_in=int(policy.access_tokens.lifetime.total_seconds()),
    )


async def start(
    session: AsyncSession, *, user: Actor, policy: SessionPolicy, client: Client
) -> IssuedTokens:
    """A new session for a user who just proved who they are."""
    return await _issue(session, user=user, family_id=uuid.uuid4(), policy=policy, client=client)


async def refresh(
    session: AsyncSession, *, refresh_token: str, policy: SessionPolicy, client: Client
) -> tuple[IssuedTokens, User] | Refusal:
    """Rotates ``refresh_token``. Of two concurrent uses of one token, exactly one succeeds.

    A refused token may end its session (a replayed copy, an account no longer active): the
    revocation must commit although the caller hears "no", so the refusal is returned."""
    digest = token_digest(refresh_token)
    now = datetime.now(UTC)
    sibling = aliased(RefreshToken)
    # The row lock makes a concurrent second use wait, then find the token retired.
    rotated = (
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
                # A rotation racing a revocation can leave a successor unrevoked in an
                # ended session; the session stays ended all the same.
                ~exists().where(
                    sibling.family_id == RefreshToken.family_id,
                    sibling.revoked_at.is_not(None),
                ),
            )
            .values(rotated_at=now)
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
    ).one_or_none()
    if rotated is None:
        ended = await _revoke_family_if_reused(session, digest)
    else:
        user = await session.get(User, rotated.user_id)
        if user is not None and user.status == UserStatus.ACTIVE:
            issued = await _issue(
                session, user=user, family_id=rotated.family_id, policy=policy, client=client
            )
            return issued, user
        ended = await revoke_family(session, rotated.family_id)
    return Refusal((SessionEnded if ended else Unauthenticated)(INVALID_REFRESH_TOKEN))


async def _revoke_family_if_reused(session: AsyncSession, digest: bytes) -> bool:
    retired = await session.scalar(
        select(RefreshToken.family_id).where(
            RefreshToken.token_hash == digest, RefreshToken.rotated_at.is_not(None)
        )
    )
    return retired is not None and await revoke_family(session, retired)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> bool:
    """Ends the session; False when it had already ended."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return cast(CursorResult[Any], result).rowcount > 0


async def holder(session: AsyncSession, *, refresh_token: str) -> User | None:
    """The active account whose live session ``refresh_token`` names, without rotating it.

    For a client that keeps the token itself as its credential (the admin dashboard's cookie):
    it asks on every request, so a sign-out, a suspension or a password reset, which revoke
    the session, end it at the next request."""
    sibling = aliased(RefreshToken)
    found: User | None = await session.scalar(
        select(User)
        .join(RefreshToken, RefreshToken.user_id == User.id)
        .where(
            RefreshToken.token_hash == token_digest(refresh_token),
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > datetime.now(UTC),
            ~exists().where(
                sibling.family_id == RefreshToken.family_id, sibling.revoked_at.is_not(None)
            ),
            User.status == UserStatus.ACTIVE,
        )
    )
    return found


async def end(session: AsyncSession, *, refresh_token: str) -> bool:
    """Signs out the session ``refresh_token`` belongs to; False when there was none to end."""
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(
            RefreshToken.token_hash == token_digest(refresh_token),
            RefreshToken.revoked_at.is_(None),
        )
    )
    return family_id is not None and await revoke_family(session, family_id)


async def end_all(session: AsyncSession, *, user_id: int) -> None:
    """Signs the user out everywhere: after a password change or reset, or a suspension."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
