"""Accounts: sign-up, sign-in, roles, profiles, password reset and email verification."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.passwords import PasswordHasher
from auth.tokens import new_secret_token, token_digest
from db.database import Database
from db.models import OneTimeToken, Upload, User
from db.states import Role, TokenPurpose, UserStatus
from services import audit, events, phone_verification, sessions
from services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from services.validation import (
    FieldErrors,
    clean_bio,
    clean_name,
    currency_problem,
    language_problem,
    normalize_email,
    notification_channels_problem,
    password_problem,
    phone_problem,
    time_zone_problem,
)

WRONG_CREDENTIALS = "The email or password is not right."
ROLE_ORDER = tuple(Role)
PASSWORD_RESET_LIFETIME = timedelta(hours=1)
EMAIL_VERIFICATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Registration:
    email: str
    password_hash: str
    first_name: str
    last_name: str
    roles: list[str]


def _email_or_problem(raw: str) -> tuple[str, str | None]:
    email = normalize_email(raw)
    return (email, None) if email else (raw, "is not a valid email address")


async def prepare_registration(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    as_host: bool,
    passwords: PasswordHasher,
) -> Registration:
    """Checks a sign-up and hashes its password; nothing is stored yet."""
    errors = FieldErrors()
    email, problem = _email_or_problem(email)
    errors.check("email", problem)
    errors.check("password", password_problem(password))
    first_name, problem = clean_name(first_name)
    errors.check("firstName", problem)
    last_name, problem = clean_name(last_name)
    errors.check("lastName", problem)
    if errors:
        raise InvalidInput(fields=errors)
    return Registration(
        email=email,
        password_hash=await passwords.hash(password),
        first_name=first_name,
        last_name=last_name,
        roles=[Role.GUEST, Role.HOST] if as_host else [Role.GUEST],
    )


async def create_account(session: AsyncSession, registration: Registration) -> User:
    user = User(
        email=registration.email,
        password_hash=registration.password_hash,
        first_name=registration.first_name,
        last_name=registration.last_name,
        roles=registration.roles,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        if "uq_user_account_email_lower" in str(error.orig):
            raise Conflict("An account with this email already exists.") from None
        raise
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(
        # Lowered by PostgreSQL on both sides, as the unique index on lower(email) is: Python's
        # lower() and the database's (by its locale) differ on some letters.
        select(User).where(func.lower(User.email) == func.lower(email))
    )


@dataclass(frozen=True)
class Authenticated:
    user: User
    rehashed: str | None
    """The password hashed anew with today's parameters, when its stored hash is older."""


async def authenticate(
    database: Database, *, email: str, password: str, passwords: PasswordHasher
) -> Authenticated:
    """The user these credentials belong to. Every failure looks and takes the same.

    Reads only, outside any transaction: the password is hashed while no connection waits."""
    normalized = normalize_email(email)
    async with database.read_session() as session:
        user = await find_by_email(session, normalized) if normalized else None
    verified = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not verified or user.status != UserStatus.ACTIVE:
        raise Unauthenticated(WRONG_CREDENTIALS)
    rehashed = None
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        rehashed = await passwords.hash(password)
    return Authenticated(user, rehashed)


async def store_rehash(session: AsyncSession, authenticated: Authenticated) -> None:
    """Keeps the hash ``authenticate`` made anew, if it made one."""
    if authenticated.rehashed is not None:
        await session.execute(
            update(User)
            .where(User.id == authenticated.user.id)
            .values(password_hash=authenticated.rehashed)
        )


async def active_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise Unauthenticated()
    return user


async def become_host(session: AsyncSession, *, user_id: int) -> User:
    user = await active_user(session, user_id)
    await _add_role(session, user, Role.HOST)
    return user


async def _add_role(session: AsyncSession, user: User, role: str) -> None:
    if role not in user.roles:
        user.roles = [r for r in ROLE_ORDER if r in user.roles or r == role]
        await session.flush()


async def hash_new_password(new_password: str, *, passwords: PasswordHasher) -> str:
    """Checks and hashes a new password, before any transaction opens."""
    if problem := password_problem(new_password):
        raise InvalidInput(fields={"newPassword": problem})
    return await passwords.hash(new_password)


async def prepare_password_change(
    database: Database,
    *,
    user_id: int,
    current_password: str,
    new_password: str,
    passwords: PasswordHasher,
) -> str:
    """Checks a password change and hashes the new password (outside any transaction, as
    ``authenticate`` does); nothing is stored yet: ``set_password`` does that."""
    if problem := password_problem(new_password):
        raise InvalidInput(fields={"newPassword": problem})
    async with database.read_session() as session:
        user = await active_user(session, user_id)
    if not await passwords.verify(user.password_hash, current_password):
        raise InvalidInput(fields={"currentPassword": "is not right"})
    return await passwords.hash(new_password)


async def set_password(session: AsyncSession, *, user_id: int, password_hash: str) -> None:
    """Sets a new password and ends every session; the caller starts a fresh one."""
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )
    await sessions.end_all(session, user_id=user_id)


async def set_status(
    session: AsyncSession, *, actor_id: int, user_id: int, status: UserStatus, now: datetime
) -> User:
    """An admin suspends or reinstates an account; suspension ends its sessions at once."""
    if status == UserStatus.SUSPENDED:
        await keep_an_active_admin(session, actor_id=actor_id, losing=user_id)
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    before = user.status
    user.status = status
    if status == UserStatus.SUSPENDED:
        await sessions.end_all(session, user_id=user_id)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="user.suspend" if status == UserStatus.SUSPENDED else "user.reinstate",
        subject=("User", user_id),
        before={"status": before},
        after={"status": status},
        now=now,
    )
    return user


async def keep_an_active_admin(session: AsyncSession, *, actor_id: int, losing: int) -> None:
    """Refuses a change that would leave no active admin (nobody could then undo it).

    Every active admin row is locked, in id order, until the caller's transaction ends, so
    two admins suspending each other queue: the second finds the first's change made."""
    admins = list(
        await session.scalars(
            select(User.id)
            .where(User.status == UserStatus.ACTIVE, User.roles.any_() == Role.ADMIN)
            .order_by(User.id)
            .with_for_update(key_share=True)
        )
    )
    if actor_id not in admins:
        raise Forbidden("Only an active admin can do this; your account no longer is one.")
    if admins == [losing]:
        raise Conflict(
            "This is the last active admin: make another admin (roost create-admin) first."
        )


async def create_admin_account(
    session: AsyncSession, registration: Registration, *, now: datetime
) -> User:
    """A new account, as sign-up makes it (and asks for its address to be confirmed), that is
    an admin from the start: for an operator setting up a platform with no admin yet."""
    user = await create_account(session, registration)
    await _add_role(session, user, Role.ADMIN)
    await request_email_verification(session, user_id=user.id, now=now)
    await audit.record(
        session,
        actor_id=None,
        action="user.create_admin",
        subject=("User", user.id),
        before=None,
        after={"roles": sorted(user.roles)},
        now=now,
    )
    return user


async def grant_role(session: AsyncSession, *, email: str, role: str, now: datetime) -> User:
    """An operator, from the command line, gives an account a role (audited, without actor)."""
    normalized = normalize_email(email)
    user = await find_by_email(session, normalized) if normalized else None
    if user is None:
        raise NotFound(f"No account has the email {email!r}; sign up first.")
    before = sorted(user.roles)
    await _add_role(session, user, role)
    await audit.record(
        session,
        actor_id=None,
        action="user.grant_role",
        subject=("User", user.id),
        before={"roles": before},
        after={"roles": sorted(user.roles)},
        now=now,
    )
    return user


# One-time tokens: password reset and email verification.


async def _new_one_time_token(
    session: AsyncSession, *, user_id: int, purpose: TokenPurpose, lifetime: timedelta
) -> str:
    # A new link replaces any earlier one of the same purpose.
    await session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )
    token = new_secret_token()
    session.add(
        OneTimeToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=token_digest(token),
            expires_at=datetime.now(UTC) + lifetime,
        )
    )
    await session.flush()
    return token


async def _consume_one_time_token(
    session: AsyncSession, *, token: str, purpose: TokenPurpose
) -> int:
    """Marks the token used and answers its user; a second use finds nothing."""
    user_id: int | None = await session.scalar(
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == token_digest(token),
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > datetime.now(UTC),
        )
        .values(used_at=datetime.now(UTC))
        .returning(OneTimeToken.user_id)
    )
    if user_id is None:
        raise InvalidInput(fields={"token": "is not valid or has expired"})
    return user_id


async def request_password_reset(session: AsyncSession, *, email: str, now: datetime) -> None:
    """Asks for a reset link to be mailed (services/event_handlers.py) if an active account has
    this address; the caller answers the same either way."""
    normalized = normalize_email(email)
    if normalized is not None:
        events.emit(session, events.PasswordResetRequested(normalized), now=now)


async def issue_password_reset(session: AsyncSession, *, email: str) -> tuple[User, str] | None:
    """A reset token for the active account with this address, replacing any earlier one;
    None when there is no such account."""
    user = await find_by_email(session, email)
    if user is None or user.status != UserStatus.ACTIVE:
        return None
    token = await _new_one_time_token(
        session,
        user_id=user.id,
        purpose=TokenPurpose.PASSWORD_RESET,
        lifetime=PASSWORD_RESET_LIFETIME,
    )
    return user, token


async def reset_password(session: AsyncSession, *, token: str, password_hash: str) -> None:
    """Sets the password a reset link was for (hashed by ``hash_new_password``), and signs the
    user out everywhere."""
    user_id = await _consume_one_time_token(
        session, token=token, purpose=TokenPurpose.PASSWORD_RESET
    )
    await session.execute(
        update(User)
        .where(User.id == user_id)
        # Following the link proved the address is theirs.
        .values(
            password_hash=password_hash,
            email_verified_at=func.coalesce(User.email_verified_at, func.now()),
        )
    )
    await sessions.end_all(session, user_id=user_id)


async def request_email_verification(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """Asks for a confirmation link to be mailed, unless the address is confirmed already."""
    user = await active_user(session, user_id)
    if user.email_verified_at is None:
        events.emit(session, events.EmailVerificationRequested(user.id), now=now)


async def issue_email_verification(
    session: AsyncSession, *, user_id: int
) -> tuple[User, str] | None:
    """A verification token for the user, replacing any earlier one; None when the address is
    confirmed already."""
    user = await session.get(User, user_id)
    if user is None or user.email_verified_at is not None:
        return None
    token = await _new_one_time_token(
        session,
        user_id=user.id,
        purpose=TokenPurpose.EMAIL_VERIFICATION,
        lifetime=EMAIL_VERIFICATION_LIFETIME,
    )
    return user, token


async def verify_email(session: AsyncSession, *, token: str) -> None:
    user_id = await _consume_one_time_token(
        session, token=token, purpose=TokenPurpose.EMAIL_VERIFICATION
    )
    await session.execute(
        update(User)
        .where(User.id == user_id, User.email_verified_at.is_(None))
        .values(email_verified_at=func.now())
    )


# Profiles.

_PROFILE_FIELDS = {"first_name": "firstName", "last_name": "lastName"}


async def update_profile(
    session: AsyncSession,
    *,
    user_id: int,
    changes: Mapping[str, Any],
    encrypt_phone: Callable[[str], str],
    decrypt_phone: Callable[[str], str | None],
) -> User:
    """Applies the fields present in ``changes``; None clears phone, bio and avatar. The number
    on file given again is no change (its verification stands); another one clears it.

    ``changes["preferences"]`` is itself a mapping of the preferences given."""
    user = await active_user(session, user_id)
    errors = FieldErrors()
    # Checked values are kept apart and set on the user only when all passed: the upload
    # lookup below autoflushes, and must not send a refused value to the database.
    checked: dict[str, object] = {}
    for field, api_name in _PROFILE_FIELDS.items():
        if field in changes:
            raw = changes[field]
            if raw is None:
                errors.check(api_name, "must not be null")
                continue
            value, problem = clean_name(str(raw))
            errors.check(api_name, problem)
            checked[field] = value
    if "bio" in changes:
        bio, problem = clean_bio(str(changes["bio"] or ""))
        errors.check("bio", problem)
        checked["bio"] = bio
    if "phone" in changes:
        phone = changes["phone"]
        if phone is None or phone == "":
            checked["phone_encrypted"] = None
        else:
            phone = str(phone).replace(" ", "")
            problem = phone_problem(phone)
            errors.check("phone", problem)
            if problem is None and phone != _phone_on_file(user, decrypt_phone):
                checked["phone_encrypted"] = encrypt_phone(phone)
        new_number = "phone_encrypted" in checked and (
            checked["phone_encrypted"] is not None or user.phone_encrypted is not None
        )
        if new_number:
            # A verification was of the old number: the new one must be proved again.
            checked["phone_verified_at"] = None
    if "avatar_upload_id" in changes:
        upload_id = changes["avatar_upload_id"]
        if upload_id is not None:
            upload = await session.get(Upload, upload_id)
            if upload is None or upload.owner_id != user_id:
                errors.check("avatarUploadId", "is not an upload of yours")
        checked["avatar_upload_id"] = upload_id
    _check_preferences(changes.get("preferences") or {}, errors, checked)
    if errors:
        raise InvalidInput(fields=errors)
    for field, checked_value in checked.items():
        setattr(user, field, checked_value)
    await session.flush()
    if "phone_encrypted" in checked:
        await phone_verification.forget_code(session, user_id=user.id)
    await session.refresh(user, ["avatar"])
    return user


def _phone_on_file(user: User, decrypt_phone: Callable[[str], str | None]) -> str | None:
    return decrypt_phone(user.phone_encrypted) if user.phone_encrypted is not None else None


_PREFERENCE_CHECKS: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    "currency": ("preferences.currency", currency_problem),
    "language": ("preferences.language", language_problem),
    "time_zone": ("preferences.timeZone", time_zone_problem),
    "notification_channels": ("preferences.notificationChannels", notification_channels_problem),
}


def _check_preferences(
    given: Mapping[str, object], errors: FieldErrors, checked: dict[str, object]
) -> None:
    for field, (api_name, problem_of) in _PREFERENCE_CHECKS.items():
        value = given.get(field)
        if value is not None:
            errors.check(api_name, problem_of(value))
            checked[field] = value
