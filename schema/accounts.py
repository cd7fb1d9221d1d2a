"""The User type and the identity types around it."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.rows import UserRow
from resolvers.permissions import current_user
from schema.compiled import reads_only_context
from schema.connections import Connection, Edge, total_count
from schema.context import Info

if TYPE_CHECKING:
    from schema.reviews import ReviewConnection

# The states' own enums, registered with strawberry under these descriptions (registering
# returns the same class; names bound to a call's result would not read as types).
Role = states.Role
strawberry.enum(Role, description="What a user may do on Roost.")
# By lookup: calling the enum class costs a search page's hosts more than their other fields.
_ROLES = {member.value: member for member in Role}
UserStatus = states.UserStatus
strawberry.enum(UserStatus, description="Whether an account may be used.")


@strawberry.enum(name="SignupRole", description="What a new account starts as.")
class SignupRole(Enum):
    GUEST = "GUEST"
    HOST = "HOST"


@strawberry.enum(name="OAuthProvider", description="Where a user can sign in from.")
class OAuthProvider(Enum):
    GOOGLE = "GOOGLE"
    FACEBOOK = "FACEBOOK"


@strawberry.enum(name="NotificationChannel", description="How Roost may reach a user.")
class NotificationChannel(Enum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    IN_APP = "IN_APP"


@strawberry.type(description="A user's settings; only they and admins see them.")
class Preferences:
    currency: str = strawberry.field(description="ISO 4217 code prices are shown in.")
    language: str = strawberry.field(description="Language tag, like `en` or `pt-BR`.")
    time_zone: str = strawberry.field(description="IANA time zone, like `Europe/Lisbon`.")
    notification_channels: list[NotificationChannel] = strawberry.field(
        description="Channels Roost may use to reach the user."
    )


@strawberry.type(name="User", description="A person with a Roost account.")
class UserType(relay.Node):
    user_id: relay.NodeID[int]
    first_name: str = strawberry.field(description="Given name.")
    last_name: str = strawberry.field(description="Family name.")
    bio: str | None = strawberry.field(description="What the user tells others about themselves.")
    roles: list[Role] = strawberry.field(
        description="Every user is a GUEST; hosts add HOST; admins add ADMIN."
    )
    created_at: datetime = strawberry.field(description="When the account was opened.")
    _row: strawberry.Private[UserRow]
    # Set where the caller has just proved to be this user (the user of an AuthPayload).
    _shown_to_self: strawberry.Private[bool] = False

    async def _private_visible(self, info: Info) -> bool:
        return self._shown_to_self or rules.can_see_user_private_fields(
            await current_user(info), self.user_id
        )

    @strawberry.field(description="Null unless the viewer is this user or an admin.")
    async def email(self, info: Info) -> str | None:
        return self._row.email if await self._private_visible(info) else None

    @strawberry.field(description="E.164 number; null unless the viewer is this user or an admin.")
    async def phone(self, info: Info) -> str | None:
        if self._row.phone_encrypted is None or not await self._private_visible(info):
            return None
        return info.context.services.cipher.decrypt(
            self._row.phone_encrypted, context=phone_cipher_context(self.user_id)
        )

    @strawberry.field(
        description="Whether the phone number was confirmed with a texted code (text messages go "
        "only to confirmed numbers); null for others, as the number is."
    )
    async def phone_verified(self, info: Info) -> bool | None:
        if not await self._private_visible(info):
            return None
        return self._row.phone_encrypted is not None and self._row.phone_verified_at is not None

    @strawberry.field(
        description="ACTIVE, or SUSPENDED by an admin; null unless the viewer is this user or "
        "an admin."
    )
    async def status(self, info: Info) -> UserStatus | None:
        return UserStatus(self._row.status) if await self._private_visible(info) else None

    @strawberry.field(description="Whether the email address was confirmed; null for others.")
    async def email_verified(self, info: Info) -> bool | None:
        if not await self._private_visible(info):
            return None
        return self._row.email_verified_at is not None

    @strawberry.field(description="Null unless the viewer is this user or an admin.")
    async def preferences(self, info: Info) -> Preferences | None:
        if not await self._private_visible(info):
            return None
        user = self._row
        return Preferences(
            currency=user.currency,
            language=user.language,
            time_zone=user.time_zone,
            notification_channels=[NotificationChannel(c) for c in user.notification_channels],
        )

    @strawberry.field(description="Address of the profile photo.")
    @reads_only_context
    def avatar_url(self, info: Info) -> str | None:
        key = self._row.avatar_thumbnail_key
        return info.context.services.storage.url(key) if key else None

    @strawberry.field(
        description="Reviews of this user as a guest, written by their hosts, newest first: "
        "published ones (admins see hidden ones too, marked)."
    )
    async def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated["ReviewConnection", strawberry.lazy("schema.reviews")]:
        from resolvers.reviews import reviews_page

        return await reviews_page(
            info,
            kind=states.ReviewKind.HOST_REVIEW,
            subject_id=self.user_id,
            first=first,
            after=after,
        )

    @classmethod
    def from_row(cls, user: UserRow, *, shown_to_self: bool = False) -> Self:
        return cls(
            user_id=user.id,
            first_name=user.first_name,
            last_name=user.last_name,
            bio=user.bio,
            roles=[_ROLES[role] for role in user.roles],
            created_at=user.created_at,
            _row=user,
            _shown_to_self=shown_to_self,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        users = await info.context.loaders.user_by_id.load_many(
            [int(node_id) for node_id in node_ids]
        )
        return [cls.from_row(user) if user else None for user in users]


def phone_cipher_context(user_id: int) -> str:
    return f"user_account.phone_encrypted:{user_id}"


@strawberry.type(description="A signed-in session.")
class AuthPayload:
    access_token: str = strawberry.field(
        description="Send as `Authorization: Bearer <accessToken>`; lives `expiresIn` seconds."
    )
    refresh_token: str = strawberry.field(
        description="Trade it for a new pair with `refreshSession`; each one works once."
    )
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    user: UserType = strawberry.field(description="Who signed in.")


@strawberry.input(description="A new account.")
class RegisterInput:
    email: str
    password: str = strawberry.field(description="10 to 128 characters, not a common password.")
    first_name: str
    last_name: str
    role: SignupRole = SignupRole.GUEST


@strawberry.input(description="What the provider's authorization step gave the frontend.")
class OAuthLoginInput:
    provider: OAuthProvider
    code: str
    redirect_uri: str
    code_verifier: str | None = strawberry.field(
        default=None, description="The PKCE verifier, when the authorization used a challenge."
    )


@strawberry.input(description="Preferences to change; fields left out stay as they are.")
class PreferencesInput:
    currency: str | None = None
    language: str | None = None
    time_zone: str | None = None
    notification_channels: list[NotificationChannel] | None = None


@strawberry.input(
    description="Profile fields to change. Left out: unchanged; null: cleared (phone, bio, avatar)."
)
class UpdateProfileInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    avatar_upload_id: strawberry.ID | None = strawberry.UNSET
    preferences: PreferencesInput | None = strawberry.UNSET


@strawberry.type(description="A user in a list, with the cursor to continue after it.")
class UserEdge(Edge[UserType]):
    pass


@strawberry.type(description="A page of users, newest accounts first.")
class UserConnection(Connection[UserEdge]):
    total_count: int = total_count("How many users match, in all.")
