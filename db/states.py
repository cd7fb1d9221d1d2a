"""The names of states, roles and parties, declared once.

Each is a ``StrEnum``: its members are the strings stored in the database and shown by the API,
so a member compares equal to what a row holds and writes as itself. Which state may follow
which is a rule, and lives with its service (``services/bookings.py``, ``services/payments.py``).
"""

from enum import StrEnum


class Role(StrEnum):
    GUEST = "GUEST"
    HOST = "HOST"
    ADMIN = "ADMIN"


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class TokenPurpose(StrEnum):
    """What a mailed one-time link is for."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a name, not a secret)
    EMAIL_VERIFICATION = "email_verification"


class ListingStatus(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    UNLISTED = "UNLISTED"
    SUSPENDED = "SUSPENDED"


class ListingModeration(StrEnum):
    """Where a listing stands with the admins, apart from its status (services/moderation.py):
    only an APPROVED listing is in search and bookable."""

    APPROVED = "APPROVED"
    PENDING_REVIEW = "PENDING_REVIEW"
    FLAGGED = "FLAGGED"


class CancellationPolicy(StrEnum):
    FLEXIBLE = "FLEXIBLE"
    MODERATE = "MODERATE"
    FIRM = "FIRM"
    STRICT = "STRICT"


class BookingStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"


ACTIVE_BOOKING = (BookingStatus.PENDING, BookingStatus.CONFIRMED)
"""A booking in one of these holds its nights: no other stay may overlap it."""


class Party(StrEnum):
    """Who acted on a booking: one of its two sides, an admin, or Roost itself."""

    GUEST = "GUEST"
    HOST = "HOST"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class PaymentProvider(StrEnum):
    STRIPE = "STRIPE"
    PAYPAL = "PAYPAL"
    MPESA = "MPESA"
    TEST = "TEST"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    CANCELED = "CANCELED"


CAPTURED_PAYMENT = (
    PaymentStatus.SUCCEEDED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
)
"""Money was taken: what is not refunded is the guest's payment for the stay."""
LIVE_PAYMENT = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, *CAPTURED_PAYMENT)
"""A booking has at most one payment in these: the one that counts."""


class OperationKind(StrEnum):
    """A movement of money in the payment ledger."""

    AUTHORIZE = "AUTHORIZE"
    CAPTURE = "CAPTURE"
    CHARGE = "CHARGE"
    RELEASE = "RELEASE"
    REFUND = "REFUND"


class OperationStatus(StrEnum):
    """Where a ledger entry is: asked of the provider, then answered one way or the other."""

    REQUESTED = "REQUESTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class PayoutAccountStatus(StrEnum):
    """A host's payout account at its provider: money can be sent to it only when READY."""

    ONBOARDING = "ONBOARDING"  # created; the host has not finished the provider's forms
    READY = "READY"  # details submitted and payouts enabled
    RESTRICTED = "RESTRICTED"  # was ready; the provider has since disabled payouts


class PayoutStatus(StrEnum):
    """Where a host's payout for a booking is."""

    PENDING = "PENDING"  # accruing: waiting for its time, the host's account, or a retry
    SENDING = "SENDING"  # claimed by a worker under a lease; the transfer is being asked for
    PAID = "PAID"  # the provider made the transfer
    FAILED = "FAILED"  # the provider declined; tried again later under a new key, or by a person
    REVERSED = "REVERSED"  # the transfer was reversed at the provider after it was paid


UNPAID_PAYOUT = (PayoutStatus.PENDING, PayoutStatus.SENDING, PayoutStatus.FAILED)
"""Owed to the host and not yet sent."""


class ReviewKind(StrEnum):
    """Who reviews whom after a stay: each side of a booking writes at most one of each."""

    GUEST_REVIEW = "GUEST_REVIEW"  # the guest reviews the stay: the listing and its host
    HOST_REVIEW = "HOST_REVIEW"  # the host reviews the guest


REVIEW_CATEGORIES = ("cleanliness", "accuracy", "communication", "location", "check_in", "value")
"""The optional 1-5 ratings a guest gives a stay besides the overall one."""


class NotificationKind(StrEnum):
    """What an in-app notification tells its reader about."""

    BOOKING_REQUESTED = "BOOKING_REQUESTED"
    BOOKING_CONFIRMED = "BOOKING_CONFIRMED"
    BOOKING_CANCELED = "BOOKING_CANCELED"
    BOOKING_COMPLETED = "BOOKING_COMPLETED"
    PAYMENT_SUCCEEDED = "PAYMENT_SUCCEEDED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    PAYOUT_SENT = "PAYOUT_SENT"
    DISPUTE_OPENED = "DISPUTE_OPENED"
    DISPUTE_RESOLVED = "DISPUTE_RESOLVED"
    REVIEW_RECEIVED = "REVIEW_RECEIVED"
    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    LISTING_APPROVED = "LISTING_APPROVED"
    LISTING_FLAGGED = "LISTING_FLAGGED"
    CALENDAR_CONFLICT = "CALENDAR_CONFLICT"


def sql_list(values: tuple[StrEnum, ...] | type[StrEnum]) -> str:
    """``'A', 'B'``: the members for an ``IN (...)`` in a constraint or hand-written SQL."""
    return ", ".join(f"'{value}'" for value in values)


class DisputeStatus(StrEnum):
    """Where a dispute about a booking is: waiting for an admin, or decided."""

    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class DisputeResolution(StrEnum):
    """How an admin decided a dispute."""

    REFUND = "REFUND"  # money back to the guest, from the booking's payment
    PAYOUT_ADJUSTMENT = "PAYOUT_ADJUSTMENT"  # the host's payout, not yet sent, made smaller
    NO_ACTION = "NO_ACTION"
