"""Accounts behind a Google or Facebook sign-in: find, link through a verified email, or create."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.oauth import OAuthProfile
from db.models import OAuthIdentity, User
from db.states import Role, UserStatus
from services.accounts import find_by_email
from services.errors import Conflict, Unauthenticated
from services.validation import (
    MAX_NAME_LENGTH,
    clean_name,
    has_control_characters,
    normalize_email,
)


async def account_for(session: AsyncSession, profile: OAuthProfile) -> User:
    """The user this provider identity signs in as; linked or created on first use."""
    user = await session.scalar(
        select(User)
        .join(OAuthIdentity, OAuthIdentity.user_id == User.id)
        .where(OAuthIdentity.provider == profile.provider, OAuthIdentity.subject == profile.subject)
    )
    if user is None:
        try:
            async with session.begin_nested():
                user = await _link_or_create(session, profile)
        except IntegrityError:
            # The same identity signing in twice at once: the other request created it.
            raise Conflict("This sign-in is already under way; try again.") from None
    if user.status != UserStatus.ACTIVE:
        raise Unauthenticated("This account is suspended.")
    return user


def _provider_name(raw: str | None, default: str) -> str:
    """A name as the provider gave it, made one we can keep: control characters dropped, cut to
    the longest name we allow, the default when nothing is left."""
    printable = "".join(ch for ch in raw or "" if not has_control_characters(ch))
    name, problem = clean_name(printable[:MAX_NAME_LENGTH])
    return default if problem else name


async def _link_or_create(session: AsyncSession, profile: OAuthProfile) -> User:
    email = normalize_email(profile.email) if profile.email else None
    user = await find_by_email(session, email) if email else None
    if user is not None and not profile.email_verified:
        raise Conflict(
            "An account with this email exists; sign in with its password to link this provider."
        )
    if user is None:
        if email is None:
            raise Unauthenticated("The provider did not share an email address; allow it.")
        user = User(
            email=email,
            first_name=_provider_name(profile.first_name, "Guest"),
            last_name=_provider_name(profile.last_name, "-"),
            roles=[Role.GUEST],
            email_verified_at=func.now() if profile.email_verified else None,
        )
        session.add(user)
        await session.flush()
    elif user.email_verified_at is None:
        user.email_verified_at = func.now()
    session.add(
        OAuthIdentity(
            user_id=user.id, provider=profile.provider, subject=profile.subject, email=email
        )
    )
    await session.flush()
    await session.refresh(user)
    return user
