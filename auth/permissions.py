"""Who may do what: permission classes for roles, and ownership rules as plain functions.

The roles in an access token are a hint for the client; decisions read the account as it is
now, so a suspension or a role change takes effect at the next request.
"""

from typing import Any

from strawberry.permission import BasePermission

from db.models import User
from db.states import Role, UserStatus
from services.errors import Forbidden, Unauthenticated


async def current_user(info: Any) -> User | None:
    """The signed-in user if their account is active, else None."""
    user_id = info.context.viewer.user_id
    if user_id is None:
        return None
    user = await info.context.loaders.user_by_id.load(user_id)
    return user if user is not None and user.status == UserStatus.ACTIVE else None


async def can_see_private_fields(info: Any, user_id: int) -> bool:
    """A user's email, phone and preferences are theirs and the admins' to see."""
    viewer = await current_user(info)
    return viewer is not None and (viewer.id == user_id or Role.ADMIN in viewer.roles)


async def require_user(info: Any) -> User:
    user = await current_user(info)
    if user is None:
        raise Unauthenticated()
    return user


class IsAuthenticated(BasePermission):
    message = "You need to sign in."

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        await require_user(info)
        return True


class _HasRole(BasePermission):
    role: str

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        user = await require_user(info)
        if self.role not in user.roles:
            raise Forbidden(self.message)
        return True


class IsHost(_HasRole):
    role = Role.HOST
    message = "Only hosts can do this; become a host first."


class IsAdmin(_HasRole):
    role = Role.ADMIN
    message = "Only admins can do this."
