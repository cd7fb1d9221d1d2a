"""The User type."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Self

import strawberry
from strawberry import relay

from auth.permissions import can_see_contact_details
from db.models import User
from schema.context import Info


@strawberry.enum(name="Role", description="What a user may do on Roost.")
class Role(Enum):
    GUEST = "GUEST"
    HOST = "HOST"
    ADMIN = "ADMIN"


@strawberry.type(name="User", description="A person with a Roost account.")
class UserType(relay.Node):
    user_id: relay.NodeID[int]
    first_name: str = strawberry.field(description="Given name.")
    last_name: str = strawberry.field(description="Family name.")
    bio: str | None = strawberry.field(description="What the user tells others about themselves.")
    avatar_url: str | None = strawberry.field(description="Address of the profile photo.")
    roles: list[Role] = strawberry.field(
        description="Every user is a GUEST; hosts add HOST; admins add ADMIN."
    )
    created_at: datetime = strawberry.field(description="When the account was opened.")
    _email: strawberry.Private[str]

    @strawberry.field(description="Null unless the viewer is this user or an admin.")
    def email(self, info: Info) -> str | None:
        return self._email if can_see_contact_details(info.context.viewer, self.user_id) else None

    @classmethod
    def from_model(cls, user: User) -> Self:
        return cls(
            user_id=user.id,
            first_name=user.first_name,
            last_name=user.last_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            roles=[Role(role) for role in user.roles],
            created_at=user.created_at,
            _email=user.email,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        users = await info.context.loaders.user_by_id.load_many(
            [int(node_id) for node_id in node_ids]
        )
        return [cls.from_model(user) if user else None for user in users]
