"""Phone verification: a 6-digit code texted to the number on file, typed back to prove it is
the user's. Text messages about bookings go only to verified numbers.

The rules. Asking texts a new code (through the outbox: services/event_handlers.py mints it as
it sends it, so the code never rests in an event), replacing any earlier one. A code lives
``CODE_LIFETIME`` and survives ``MAX_FAILED_ATTEMPTS`` wrong guesses, after which it is void and
a new one must be asked for. A code verifies only the number it was texted to: it is sealed
with the field cipher, bound to the user and to the number's ciphertext, and a new number
(services/accounts.update_profile) drops it and clears the verification.

Six digits are a million codes: a hash of one is undone by trying them all, so the code is
sealed with the server's field key instead (AES-GCM, as phone numbers are), never stored in
the clear, and compared in constant time. Codes are never logged.
"""

import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth.crypto import FieldCipher
from db.models import PhoneVerification, User
from db.states import UserStatus
from services import events
from services.errors import InvalidInput, Refusal, Unauthenticated

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5

# The reasons a client tells apart (``extensions.reason`` of BAD_USER_INPUT).
PHONE_MISSING = "PHONE_MISSING"
CODE_WRONG = "CODE_WRONG"
CODE_EXPIRED = "CODE_EXPIRED"

_SEPARATORS = re.compile(r"[\s-]")
_CODE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


def _no_phone() -> InvalidInput:
    return InvalidInput.field(
        "phone", "no phone number is on file: add one with updateProfile", reason=PHONE_MISSING
    )


def _expired() -> InvalidInput:
    return InvalidInput.field(
        "code",
        "has expired, was used up or was never sent: ask for a new one",
        reason=CODE_EXPIRED,
    )


def _seal_context(user_id: int, phone_encrypted: str) -> str:
    return f"phone_verification.code_sealed:{user_id}:{phone_encrypted}"


async def _active_user(session: AsyncSession, user_id: int, *, lock: bool) -> User:
    query = select(User).where(User.id == user_id)
    if lock:
        # Serializes with a change of number (update_profile writes the same row).
        query = query.with_for_update(of=User).execution_options(populate_existing=True)
    user = await session.scalar(query)
    if user is None or user.status != UserStatus.ACTIVE:
        raise Unauthenticated()
    return user


async def request_code(session: AsyncSession, *, user_id: int, now: datetime) -> bool:
    """Asks for a code to be texted to the user's number; False (nothing sent) when that
    number is verified already."""
    user = await _active_user(session, user_id, lock=False)
    if user.phone_encrypted is None:
        raise _no_phone()
    if user.phone_verified_at is not None:
        return False
    events.emit(session, events.PhoneVerificationRequested(user.id), now=now)
    return True


async def issue_code(
    session: AsyncSession, *, user_id: int, now: datetime, cipher: FieldCipher
) -> tuple[User, str] | None:
    """A new code for the user's number, replacing any earlier one: the user and the code, to
    be texted in this transaction. None when there is nothing to verify (no number, or a
    verified one, or no active account)."""
    user = await session.scalar(
        select(User)
        .where(User.id == user_id, User.status == UserStatus.ACTIVE)
        .with_for_update(of=User)
        .execution_options(populate_existing=True)
    )
    if user is None or user.phone_encrypted is None or user.phone_verified_at is not None:
        return None
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    sealed = cipher.encrypt(code, context=_seal_context(user.id, user.phone_encrypted))
    values = {"code_sealed": sealed, "expires_at": now + CODE_LIFETIME, "failed_attempts": 0}
    await session.execute(
        insert(PhoneVerification)
        .values(user_id=user.id, created_at=now, **values)
        .on_conflict_do_update(index_elements=["user_id"], set_={**values, "created_at": now})
    )
    return user, code


async def verify(
    session: AsyncSession, *, user_id: int, code: str, now: datetime, cipher: FieldCipher
) -> User | Refusal:
    """Marks the user's number verified if ``code`` is the one texted to it.

    A wrong guess is counted and its count must stand: it comes back as a Refusal, for the
    caller to raise once its unit of work has committed."""
    given = _SEPARATORS.sub("", code)
    if not _CODE.fullmatch(given):
        raise InvalidInput.field(
            "code", f"must be the {CODE_DIGITS} digits texted to you", reason=CODE_WRONG
        )
    user = await _active_user(session, user_id, lock=True)
    if user.phone_encrypted is None:
        raise _no_phone()
    if user.phone_verified_at is not None:
        return user  # verified already, perhaps by this very code sent twice
    pending = await session.scalar(
        select(PhoneVerification).where(PhoneVerification.user_id == user.id).with_for_update()
    )
    if pending is None or pending.expires_at <= now:
        raise _expired()
    if pending.failed_attempts >= MAX_FAILED_ATTEMPTS:
        raise _expired()
    expected = cipher.decrypt(
        pending.code_sealed, context=_seal_context(user.id, user.phone_encrypted)
    )
    if expected is None:  # sealed for another number
        raise _expired()
    if hmac.compare_digest(expected.encode(), given.encode()):
        user.phone_verified_at = now
        await session.delete(pending)
        await session.flush()
        return user
    pending.failed_attempts += 1
    await session.flush()
    left = MAX_FAILED_ATTEMPTS - pending.failed_attempts
    problem = (
        f"is not right; {left} {'try' if left == 1 else 'tries'} left"
        if left
        else "is not right, and no tries are left: ask for a new code"
    )
    return Refusal(InvalidInput.field("code", problem, reason=CODE_WRONG))


async def forget_code(session: AsyncSession, *, user_id: int) -> None:
    """Drops the code waiting to be typed back (the number it was sent to is no longer on file)."""
    await session.execute(delete(PhoneVerification).where(PhoneVerification.user_id == user_id))
