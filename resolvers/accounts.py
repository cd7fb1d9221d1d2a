"""Identity: sign-up, sign-in, sessions, roles and profiles."""

from dataclasses import replace
from functools import partial

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from auth.oauth import OAuthRefused
from db.rows import UserRow
from db.states import UserStatus
from resolvers.node import node_id, plain_input
from resolvers.permissions import IsAdmin, IsAuthenticated, current_user, require_user
from schema.accounts import (
    AuthPayload,
    OAuthLoginInput,
    RegisterInput,
    SignupRole,
    UpdateProfileInput,
    UserType,
    phone_cipher_context,
)
from schema.context import Info
from services import accounts, oauth, phone_verification, sessions, uploads
from services.errors import InvalidInput, Refusal, Unauthenticated
from services.sessions import IssuedTokens


def _payload(issued: IssuedTokens, user: UserRow) -> AuthPayload:
    return AuthPayload(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=UserType.from_row(user, shown_to_self=True),
    )


async def _signed_in(info: Info, session: AsyncSession, user: UserRow) -> AuthPayload:
    """A new session for ``user``, in the caller's unit of work."""
    ctx = info.context
    issued = await sessions.start(
        session, user=user, policy=ctx.services.session_policy, client=ctx.client
    )
    return _payload(issued, user)


async def _sessions_ended(info: Info) -> None:
    """Answers once every server process refuses the ended sessions' access tokens."""
    await info.context.services.revoked_sessions.settle()


async def me(info: Info) -> UserType | None:
    user = await current_user(info)
    return UserType.from_row(user) if user else None


async def register(info: Info, input: RegisterInput) -> AuthPayload:
    ctx = info.context
    await ctx.services.attempt_limits.count("register", ip=ctx.client.ip_address)
    registration = await accounts.prepare_registration(
        email=input.email,
        password=input.password,
        first_name=input.first_name,
        last_name=input.last_name,
        as_host=input.role == SignupRole.HOST,
        passwords=ctx.services.passwords,
    )

    async def work(session: AsyncSession) -> AuthPayload:
        user = await accounts.create_account(session, registration)
        await accounts.request_email_verification(
            session, user_id=user.id, now=ctx.services.clock()
        )
        return await _signed_in(info, session, UserRow.of(user))

    return await ctx.database.transaction(work)


async def login(info: Info, email: str, password: str) -> AuthPayload:
    ctx = info.context
    await ctx.services.attempt_limits.count("login", ip=ctx.client.ip_address, email=email)
    authenticated = await accounts.authenticate(
        ctx.database, email=email, password=password, passwords=ctx.services.passwords
    )

    async def work(session: AsyncSession) -> AuthPayload:
        await accounts.store_rehash(session, authenticated)
        return await _signed_in(info, session, UserRow.of(authenticated.user))

    return await ctx.database.transaction(work)


async def login_with_oauth(info: Info, input: OAuthLoginInput) -> AuthPayload:
    ctx = info.context
    await ctx.services.attempt_limits.count("oauth", ip=ctx.client.ip_address)
    provider = ctx.services.oauth_providers.get(input.provider.value)
    if provider is None:
        raise InvalidInput.field("provider", "is not enabled on this server")
    # The provider is called before any transaction opens: a slow provider holds no connection.
    try:
        profile = await provider.profile(
            code=input.code, redirect_uri=input.redirect_uri, code_verifier=input.code_verifier
        )
    except OAuthRefused as refused:
        raise Unauthenticated(str(refused)) from None

    async def work(session: AsyncSession) -> AuthPayload:
        user = await oauth.account_for(session, profile)
        return await _signed_in(info, session, UserRow.of(user))

    return await ctx.database.transaction(work)


async def refresh_session(info: Info, refresh_token: str) -> AuthPayload:
    ctx = info.context
    outcome = await ctx.database.transaction(
        partial(
            sessions.refresh,
            refresh_token=refresh_token,
            policy=ctx.services.session_policy,
            client=ctx.client,
        )
    )
    if isinstance(outcome, Refusal):
        if isinstance(outcome.error, sessions.SessionEnded):
            await _sessions_ended(info)
        raise outcome.error
    issued, user = outcome
    return _payload(issued, UserRow.of(user))


async def logout(info: Info, refresh_token: str) -> bool:
    ended = await info.context.database.transaction(
        partial(sessions.end, refresh_token=refresh_token)
    )
    if ended:
        await _sessions_ended(info)
    return ended


async def request_password_reset(info: Info, email: str) -> bool:
    ctx = info.context
    await ctx.services.attempt_limits.count("password_reset", ip=ctx.client.ip_address, email=email)
    await ctx.database.transaction(
        partial(accounts.request_password_reset, email=email, now=ctx.services.clock())
    )
    return True


async def reset_password(info: Info, token: str, new_password: str) -> bool:
    ctx = info.context
    await ctx.services.attempt_limits.count("password_reset", ip=ctx.client.ip_address)
    password_hash = await accounts.hash_new_password(new_password, passwords=ctx.services.passwords)
    await ctx.database.transaction(
        partial(accounts.reset_password, token=token, password_hash=password_hash)
    )
    await _sessions_ended(info)
    return True


async def change_password(info: Info, current_password: str, new_password: str) -> AuthPayload:
    ctx = info.context
    user = await require_user(info)
    await ctx.services.attempt_limits.count(
        "change_password", ip=ctx.client.ip_address, user_id=user.id
    )
    password_hash = await accounts.prepare_password_change(
        ctx.database,
        user_id=user.id,
        current_password=current_password,
        new_password=new_password,
        passwords=ctx.services.passwords,
    )

    async def work(session: AsyncSession) -> AuthPayload:
        await accounts.set_password(session, user_id=user.id, password_hash=password_hash)
        return await _signed_in(info, session, user)

    payload = await ctx.database.transaction(work)
    await _sessions_ended(info)
    return payload


async def verify_email(info: Info, token: str) -> bool:
    await info.context.database.transaction(partial(accounts.verify_email, token=token))
    return True


async def request_email_verification(info: Info) -> bool:
    ctx = info.context
    user = await require_user(info)
    await ctx.services.attempt_limits.count(
        "email_verification", ip=ctx.client.ip_address, user_id=user.id
    )
    await ctx.database.transaction(
        partial(accounts.request_email_verification, user_id=user.id, now=ctx.services.clock())
    )
    return True


async def request_phone_verification(info: Info) -> bool:
    ctx = info.context
    user = await require_user(info)
    # Each code is a paid text message: counted per hour, refused or not.
    limits = replace(
        ctx.services.attempt_limits,
        per_account=ctx.services.phone_codes_per_hour,
        window_seconds=3600,
    )
    await limits.count("phone_code", ip=ctx.client.ip_address, user_id=user.id)
    return await ctx.database.transaction(
        partial(phone_verification.request_code, user_id=user.id, now=ctx.services.clock())
    )


async def verify_phone(info: Info, code: str) -> UserType:
    ctx = info.context
    user = await require_user(info)
    await ctx.services.attempt_limits.count(
        "phone_verify", ip=ctx.client.ip_address, user_id=user.id
    )
    outcome = await ctx.database.transaction(
        partial(
            phone_verification.verify,
            user_id=user.id,
            code=code,
            now=ctx.services.clock(),
            cipher=ctx.services.cipher,
        )
    )
    if isinstance(outcome, Refusal):
        raise outcome.error
    return UserType.from_row(UserRow.of(outcome))


async def become_host(info: Info) -> UserType:
    user = await require_user(info)
    updated = await info.context.database.transaction(
        partial(accounts.become_host, user_id=user.id)
    )
    return UserType.from_row(UserRow.of(updated))


async def update_profile(info: Info, input: UpdateProfileInput) -> UserType:
    ctx = info.context
    user = await require_user(info)
    changes = plain_input(input)
    if changes.get("avatar_upload_id") is not None:
        changes["avatar_upload_id"] = node_id(
            changes["avatar_upload_id"], "Upload", "avatarUploadId"
        )
    updated = await ctx.database.transaction(
        partial(
            accounts.update_profile,
            user_id=user.id,
            changes=changes,
            encrypt_phone=lambda phone: ctx.services.cipher.encrypt(
                phone, context=phone_cipher_context(user.id)
            ),
            decrypt_phone=lambda sealed: ctx.services.cipher.decrypt(
                sealed, context=phone_cipher_context(user.id)
            ),
        )
    )
    return UserType.from_row(UserRow.of(updated))


async def _set_status(info: Info, user_id: strawberry.ID, status: UserStatus) -> UserType:
    admin = await require_user(info)
    target = node_id(user_id, "User", "userId")
    user = await info.context.database.transaction(
        partial(
            accounts.set_status,
            actor_id=admin.id,
            user_id=target,
            status=status,
            now=info.context.services.clock(),
        )
    )
    if status == UserStatus.SUSPENDED:
        await _sessions_ended(info)
    return UserType.from_row(UserRow.of(user))


async def suspend_user(info: Info, user_id: strawberry.ID) -> UserType:
    return await _set_status(info, user_id, UserStatus.SUSPENDED)


async def reinstate_user(info: Info, user_id: strawberry.ID) -> UserType:
    return await _set_status(info, user_id, UserStatus.ACTIVE)


async def delete_upload(info: Info, id: strawberry.ID) -> bool:
    user = await require_user(info)
    upload_id = node_id(id, "Upload", "id")
    image_key, thumbnail_key = await info.context.database.transaction(
        partial(uploads.delete_upload, actor=user, upload_id=upload_id)
    )
    await uploads.discard_image(info.context.services.storage, image_key, thumbnail_key)
    return True


@strawberry.type
class AccountQueries:
    me: UserType | None = strawberry.field(
        resolver=me, description="The signed-in user; null for an anonymous caller."
    )


@strawberry.type
class AccountMutations:
    register: AuthPayload = strawberry.mutation(
        resolver=register, description="Opens an account (as a guest, or a host) and signs in."
    )
    login: AuthPayload = strawberry.mutation(
        resolver=login, description="Signs in with email and password."
    )
    login_with_oauth: AuthPayload = strawberry.mutation(
        resolver=login_with_oauth,
        name="loginWithOAuth",
        description=(
            "Signs in with the code Google or Facebook returned to the frontend; links a "
            "verified email to its existing account, or opens a new one."
        ),
    )
    refresh_session: AuthPayload = strawberry.mutation(
        resolver=refresh_session,
        description="Trades a refresh token for a new pair; the old refresh token stops working.",
    )
    logout: bool = strawberry.mutation(
        resolver=logout, description="Ends the session the refresh token belongs to."
    )
    request_password_reset: bool = strawberry.mutation(
        resolver=request_password_reset,
        description="Mails a reset link if the account exists; true either way.",
    )
    reset_password: bool = strawberry.mutation(
        resolver=reset_password,
        description="Sets a new password with a reset link's token; signs out every session.",
    )
    change_password: AuthPayload = strawberry.mutation(
        resolver=change_password,
        permission_classes=[IsAuthenticated],
        description="Changes the password, ends every other session and starts a new one.",
    )
    verify_email: bool = strawberry.mutation(
        resolver=verify_email, description="Confirms the email address with a mailed token."
    )
    request_email_verification: bool = strawberry.mutation(
        resolver=request_email_verification,
        permission_classes=[IsAuthenticated],
        description="Mails a new confirmation link to the signed-in user.",
    )
    update_profile: UserType = strawberry.mutation(
        resolver=update_profile,
        permission_classes=[IsAuthenticated],
        description="Changes the signed-in user's profile.",
    )
    request_phone_verification: bool = strawberry.mutation(
        resolver=request_phone_verification,
        permission_classes=[IsAuthenticated],
        description=(
            "Texts a 6-digit code to the phone number on file, replacing any earlier code; it "
            "lives 10 minutes. False (nothing sent) when the number is verified already; "
            "BAD_USER_INPUT (reason PHONE_MISSING) when there is no number."
        ),
    )
    verify_phone: UserType = strawberry.mutation(
        resolver=verify_phone,
        permission_classes=[IsAuthenticated],
        description=(
            "Confirms the phone number with the code texted to it. A wrong code is "
            "BAD_USER_INPUT with reason CODE_WRONG; after 5 wrong tries, or 10 minutes, the code "
            "is void (reason CODE_EXPIRED) and a new one must be asked for."
        ),
    )
    delete_upload: bool = strawberry.mutation(
        resolver=delete_upload,
        permission_classes=[IsAuthenticated],
        description=(
            "Removes one of the signed-in user's uploads and its files from storage; an avatar "
            "made of it is cleared. CONFLICT while a listing shows it; NOT_FOUND for another's."
        ),
    )
    become_host: UserType = strawberry.mutation(
        resolver=become_host,
        permission_classes=[IsAuthenticated],
        description="Adds the HOST role to the signed-in user.",
    )
    suspend_user: UserType = strawberry.mutation(
        resolver=suspend_user,
        permission_classes=[IsAdmin],
        description=(
            "Admins: suspends an account and ends its sessions at once. The last active admin "
            "cannot be suspended (CONFLICT): make another admin first."
        ),
    )
    reinstate_user: UserType = strawberry.mutation(
        resolver=reinstate_user,
        permission_classes=[IsAdmin],
        description="Admins: lifts a suspension.",
    )
