"""The platform's settings that admins change while it runs: the guest service fee, the host
fee, occupancy taxes (a platform rate and one per country), how long a payment may hold a stay,
how long a host has to answer a request, how long after a stay its host is paid, and whether
listings wait for an admin's review.

The environment gives every default (app/settings.py); the one ``platform_settings`` row holds
only what admins changed (a null column keeps the default, and setting a value back to null
returns to it). Every change is audited as "settings.update", with the changed values only.

Every process sees a change at once: each keeps the row in a ``PlatformSettingsCache``, which the
process that committed a change empties and, through pub/sub (Redis when configured), tells
every other process to empty too. A notice lost while Redis was away is bounded by the cache's
lifetime: the row is read again after it anyway. Search and listing pages never read it; a quote,
a booking, a publication and a payout read the cached copy.
"""

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules as auth_rules
from db.database import Database
from db.models import PlatformSettingsRow
from db.rows import Actor
from gateways.pubsub import PubSub
from services import audit
from services.bookings import BookingRules
from services.errors import Forbidden, InvalidInput
from services.listings import country_names
from services.payouts import PayoutPolicy
from services.pricing import FeePolicy
from services.validation import FieldErrors

log = logging.getLogger("roost.platform_settings")

CHANNEL = "platform-settings"
MAX_COUNTRIES = 250
_HUNDRED = Decimal(100)

# Each setting: its API name, and for numbers the bounds of what an admin may choose.
PERCENTS = {
    "guest_service_fee_percent": "guestServiceFeePercent",
    "host_fee_percent": "hostFeePercent",
    "occupancy_tax_percent": "occupancyTaxPercent",
}


@dataclass(frozen=True)
class Duration:
    """A setting kept as a whole number of ``unit``s, from ``least`` to ``most``."""

    api_name: str
    attribute: str
    unit: timedelta
    least: int
    most: int


DURATIONS = {
    "payment_window_minutes": Duration(
        "paymentWindowMinutes", "payment_window", timedelta(minutes=1), 1, 24 * 60
    ),
    "host_response_hours": Duration(
        "hostResponseHours", "host_response_window", timedelta(hours=1), 1, 14 * 24
    ),
    "payout_delay_hours": Duration(
        "payoutDelayHours", "payout_delay", timedelta(hours=1), 0, 60 * 24
    ),
}
SETTINGS = (
    *PERCENTS,
    "tax_percent_by_country",
    *DURATIONS,
    "moderation_enabled",
)
API_NAMES = {
    **PERCENTS,
    "tax_percent_by_country": "taxPercentByCountry",
    **{name: duration.api_name for name, duration in DURATIONS.items()},
    "moderation_enabled": "moderationEnabled",
}


@dataclass(frozen=True)
class PlatformSettings:
    """The settings in force: the stored changes over the environment's defaults."""

    guest_service_fee_percent: Decimal
    host_fee_percent: Decimal
    occupancy_tax_percent: Decimal
    tax_percent_by_country: Mapping[str, Decimal]
    payment_window: timedelta
    host_response_window: timedelta
    payout_delay: timedelta
    moderation_enabled: bool
    changed: frozenset[str] = field(default_factory=frozenset)
    """Which settings admins set (the others are the environment's defaults)."""
    updated_at: datetime | None = None
    updated_by_id: int | None = None

    def booking_rules(self, base: BookingRules) -> BookingRules:
        return replace(
            base,
            fees=FeePolicy(
                guest_service_fee_percent=self.guest_service_fee_percent,
                occupancy_tax_percent=self.occupancy_tax_percent,
                occupancy_tax_percent_by_country=self.tax_percent_by_country,
            ),
            payment_window=self.payment_window,
            host_response_window=self.host_response_window,
        )

    def payout_policy(self, base: PayoutPolicy) -> PayoutPolicy:
        return replace(base, host_fee_percent=self.host_fee_percent, delay=self.payout_delay)

    def value(self, name: str) -> Any:
        """A setting by its stored name, in the units the row keeps."""
        if (duration := DURATIONS.get(name)) is not None:
            spell: timedelta = getattr(self, duration.attribute)
            return spell / duration.unit
        return getattr(self, name)


def defaults_of(
    rules: BookingRules, policy: PayoutPolicy, *, moderation_enabled: bool
) -> PlatformSettings:
    """The environment's settings, before any admin changed one."""
    return PlatformSettings(
        guest_service_fee_percent=rules.fees.guest_service_fee_percent,
        host_fee_percent=policy.host_fee_percent,
        occupancy_tax_percent=rules.fees.occupancy_tax_percent,
        tax_percent_by_country=dict(rules.fees.occupancy_tax_percent_by_country),
        payment_window=rules.payment_window,
        host_response_window=rules.host_response_window,
        payout_delay=policy.delay,
        moderation_enabled=moderation_enabled,
    )


Stored = Mapping[str, Any]
"""The row's values that are set, by column name (none when there is no row)."""


async def stored(session: AsyncSession) -> Stored:
    row = await session.scalar(select(PlatformSettingsRow))
    return _of_row(row) if row is not None else {}


def _of_row(row: PlatformSettingsRow) -> Stored:
    values = {name: getattr(row, name) for name in (*SETTINGS, "updated_at", "updated_by_id")}
    return {name: value for name, value in values.items() if value is not None}


def overlay(defaults: PlatformSettings, values: Stored) -> PlatformSettings:
    """``defaults`` with the stored changes in place."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if (duration := DURATIONS.get(name)) is not None:
            changes[duration.attribute] = value * duration.unit
        elif name == "tax_percent_by_country":
            changes[name] = {country: Decimal(percent) for country, percent in value.items()}
        else:
            changes[name] = value
    return replace(defaults, **changes, changed=frozenset(values) & frozenset(SETTINGS))


async def current(session: AsyncSession, *, defaults: PlatformSettings) -> PlatformSettings:
    """The settings in force, read in ``session`` (no cache)."""
    return overlay(defaults, await stored(session))


def _percent(value: object, name: str, errors: FieldErrors) -> Decimal | None:
    try:
        percent = Decimal(str(value))
    except InvalidOperation:
        percent = None
    if (
        percent is None
        or not percent.is_finite()
        or not 0 <= percent <= _HUNDRED
        or percent != percent.quantize(Decimal("0.01"))
    ):
        errors.check(name, "must be a percentage from 0 to 100, with at most 2 decimals")
        return None
    return percent.quantize(Decimal("0.01"))


def _country_rates(value: object, errors: FieldErrors) -> dict[str, str] | None:
    """``{"PT": Decimal("6.5")}`` or pairs like it, checked, as the row keeps them."""
    api_name = API_NAMES["tax_percent_by_country"]
    pairs: Iterable[Any] = value.items() if isinstance(value, Mapping) else value  # type: ignore[assignment]
    try:
        pairs = list(pairs)
    except TypeError:
        errors.check(api_name, "must map country codes to percentages")
        return None
    if len(pairs) > MAX_COUNTRIES:
        errors.check(api_name, f"at most {MAX_COUNTRIES} countries")
        return None
    rates: dict[str, str] = {}
    for pair in pairs:
        country, percent = pair
        code = str(country).strip().upper()
        if code not in country_names():
            errors.check(f"{api_name}.{str(country)[:8]}", "is not an ISO 3166-1 alpha-2 code")
            continue
        if code in rates:
            errors.check(f"{api_name}.{code}", "is given twice")
            continue
        checked = _percent(percent, f"{api_name}.{code}", errors)
        if checked is not None:
            rates[code] = str(checked)
    return dict(sorted(rates.items()))


def _checked(changes: Mapping[str, object]) -> dict[str, Any]:
    """The changes as the row keeps them (None: back to the default); BAD_USER_INPUT with
    every field that is wrong."""
    errors = FieldErrors()
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in SETTINGS:
            errors.check(name, "is not a platform setting")
            continue
        api_name = API_NAMES[name]
        if value is None:
            values[name] = None
        elif name in PERCENTS:
            values[name] = _percent(value, api_name, errors)
        elif name == "tax_percent_by_country":
            values[name] = _country_rates(value, errors)
        elif (duration := DURATIONS.get(name)) is not None:
            least, most = duration.least, duration.most
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
                errors.check(api_name, f"must be a whole number from {least} to {most}")
            values[name] = value
        elif not isinstance(value, bool):
            errors.check(api_name, "must be true or false")
        else:
            values[name] = value
    if errors:
        raise InvalidInput(fields=errors)
    return values


def _shown(settings: PlatformSettings, name: str) -> Any:
    """A setting as the audit log shows it (JSON)."""
    value = settings.value(name)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if name == "tax_percent_by_country":
        return {country: str(percent) for country, percent in sorted(value.items())}
    return value


async def update(
    session: AsyncSession,
    *,
    admin: Actor,
    changes: Mapping[str, object],
    now: datetime,
    defaults: PlatformSettings,
) -> PlatformSettings:
    """Sets the given settings (by stored name, in the row's units: percents as Decimal, the
    countries' rates as a mapping or pairs, whole minutes or hours, a bool; None returns one to
    its default) and answers the settings in force. The caller tells every process once the
    transaction commits (``PlatformSettingsCache.changed``)."""
    if not auth_rules.is_admin(admin):
        raise Forbidden("Only admins can change the platform's settings.")
    values = _checked(changes)
    await session.execute(insert(PlatformSettingsRow).values(id=1).on_conflict_do_nothing())
    row = await session.scalar(
        select(PlatformSettingsRow).with_for_update().execution_options(populate_existing=True)
    )
    assert row is not None  # inserted just above, and never deleted  # noqa: S101
    before = overlay(defaults, _of_row(row))
    for name, value in values.items():
        setattr(row, name, value)
    after = overlay(defaults, _of_row(row))
    moved = [
        name
        for name in SETTINGS
        if name in values
        and (
            _shown(before, name) != _shown(after, name)
            or (name in before.changed) != (name in after.changed)
        )
    ]
    if not moved:
        return before
    row.updated_at, row.updated_by_id = now, admin.id
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="settings.update",
        subject=("PlatformSettings", 1),
        before={name: _shown(before, name) for name in moved},
        after={name: _shown(after, name) for name in moved},
        now=now,
    )
    return overlay(defaults, _of_row(row))


class PlatformSettingsCache:
    """This process's copy of the stored settings: read at most once per ``ttl_seconds``,
    emptied at once when any process announces a change (``changed``)."""

    def __init__(self, database: Database, *, pubsub: PubSub, ttl_seconds: float = 60.0) -> None:
        self._database = database
        self._pubsub = pubsub
        self._ttl = ttl_seconds
        self._values: Stored | None = None
        self._expires = 0.0
        # Raised by each change heard: a read begun before it must not be kept after it.
        self._generation = 0
        self._task: asyncio.Task[None] | None = None

    async def stored(self) -> Stored:
        if self._values is not None and time.monotonic() < self._expires:
            return self._values
        generation = self._generation
        async with self._database.read_session() as session:
            values = await stored(session)
        if generation == self._generation:
            self._values, self._expires = values, time.monotonic() + self._ttl
        return values

    async def current(self, defaults: PlatformSettings) -> PlatformSettings:
        return overlay(defaults, await self.stored())

    def forget(self) -> None:
        self._generation += 1
        self._values = None

    async def changed(self) -> None:
        """After a change committed: this process forgets its copy, and tells the others."""
        self.forget()
        await self._pubsub.publish(CHANNEL, b"changed")

    def start(self) -> None:
        """Listens for changes made by other processes (the pub/sub must be started too)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="platform-settings")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _listen(self) -> None:
        async with self._pubsub.subscribe(CHANNEL) as listener:
            async for _ in listener:
                self.forget()
