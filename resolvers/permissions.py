"""Who is asking, and the strawberry permission classes for roles.

GraphQL surface over the rules in ``auth/rules.py``: these read ``info.context`` and raise the
domain errors a client sees (UNAUTHENTICATED, FORBIDDEN); the rules themselves only answer
yes or no. The roles in an access token are a hint for the client; decisions read the account
as it is now, so a suspension or a role change takes effect at the next request.
"""

from typing import Any

from strawberry.permission import BasePermission

from auth import rules
from db.rows import BookingRow, ListingRow, UserRow
from db.states import Role, UserStatus
from schema.context import Info
from services.errors import Forbidden, Unauthenticated


async def current_user(info: Info) -> UserRow | None:
    """The signed-in user if their account is active, else None."""
    user_id = info.context.viewer.user_id
    if user_id is None:
        return None
    user = await info.context.loaders.user_by_id.load(user_id)
    return user if user is not None and user.status == UserStatus.ACTIVE else None


async def require_user(info: Info) -> UserRow:
    user = await current_user(info)
    if user is None:
        raise Unauthenticated()
    return user


async def can_see_listing(info: Info, row: ListingRow | None) -> bool:
    """Whether the viewer may see this listing row (None: no such listing)."""
    if row is None:
        return False
    deleted = row.deleted_at is not None
    if rules.listing_is_public(status=row.status, deleted=deleted, moderation=row.moderation):
        return True  # without loading the viewer
    return rules.can_see_listing(
        await current_user(info),
        host_id=row.host_id,
        status=row.status,
        deleted=deleted,
        moderation=row.moderation,
    )


async def can_see_booking(info: Info, row: BookingRow | None) -> bool:
    """Whether the viewer may see this booking row (None: no such booking)."""
    if row is None:
        return False
    listing = await info.context.loaders.listing_by_id.load(row.listing_id)
    return listing is not None and rules.can_see_booking(
        await current_user(info), guest_id=row.guest_id, host_id=listing.host_id
    )


class IsAuthenticated(BasePermission):
    message = "You need to sign in."

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await require_user(info)
        return True


class _HasRole(BasePermission):
    role: Role

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not rules.has_role(await require_user(info), self.role):
            raise Forbidden(self.message)
        return True


class IsHost(_HasRole):
    role = Role.HOST
    message = "Only hosts can do this; become a host first."


class IsAdmin(_HasRole):
    role = Role.ADMIN
    message = "Only admins can do this."
