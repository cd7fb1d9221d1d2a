"""The platform settings page's form: the settings in force as text fields, and back from the
posted form to the changes ``services.platform_settings.update`` takes (only the settings whose
value differs, so that saving the page as it is changes and records nothing)."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.errors import InvalidInput
from services.platform_settings import API_NAMES, PlatformSettings

MAX_TEXT = 40
MAX_COUNTRY_LINES = 8000  # 250 countries, with room for spaces


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # percent, countries, whole, switch


FIELDS = (
    Field("guest_service_fee_percent", "Guest service fee (%)", "percent"),
    Field("host_fee_percent", "Host fee (%)", "percent"),
    Field(
        "occupancy_tax_percent",
        "Occupancy tax, where a country has no rate of its own (%)",
        "percent",
    ),
    Field(
        "tax_percent_by_country",
        "Occupancy tax per country: one a line, its code and its percentage (PT 6.5)",
        "countries",
    ),
    Field("payment_window_minutes", "Payment hold: minutes a guest has to pay", "whole"),
    Field("host_response_hours", "Host response window (hours)", "whole"),
    Field("payout_delay_hours", "Payout delay after a stay ends (hours)", "whole"),
    Field("moderation_enabled", "New and edited listings wait for review", "switch"),
)
assert {f.name for f in FIELDS} == set(API_NAMES)  # noqa: S101 (a setting left off the page)


def _text(settings: PlatformSettings, field: Field) -> str:
    value = settings.value(field.name)
    if field.kind == "countries":
        return "\n".join(f"{code} {percent}" for code, percent in sorted(value.items()))
    if field.kind == "whole":
        return str(int(value))
    if field.kind == "switch":
        return "on" if value else "off"
    return str(value)


def shown(settings: PlatformSettings) -> list[dict[str, Any]]:
    return [
        {
            "name": field.name,
            "label": field.label,
            "kind": field.kind,
            "value": _text(settings, field),
            "changed": field.name in settings.changed,
        }
        for field in FIELDS
    ]


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _countries(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        parts = line.replace(":", " ").replace("=", " ").split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InvalidInput.field(
                API_NAMES["tax_percent_by_country"],
                "one country a line: its code and its percentage (PT 6.5)",
            )
        pairs.append((parts[0].upper(), parts[1]))
    return pairs


def changes(form: Mapping[str, Any], settings: PlatformSettings) -> dict[str, Any]:
    """What the form changes, by setting (None: back to its default); the service checks the
    values themselves."""
    found: dict[str, Any] = {}
    for field in FIELDS:
        name, api_name = field.name, API_NAMES[field.name]
        if form.get(f"default:{name}") == "on":
            if name in settings.changed:
                found[name] = None
            continue
        raw = form.get(name)
        if not isinstance(raw, str):
            continue
        limit = MAX_COUNTRY_LINES if field.kind == "countries" else MAX_TEXT
        if len(raw) > limit:
            raise InvalidInput.field(api_name, f"must be at most {limit} characters")
        raw = raw.strip()
        current = settings.value(name)
        if field.kind == "percent":
            if raw and _decimal(raw) != current:
                found[name] = raw
        elif field.kind == "countries":
            pairs = _countries(raw)
            given = {code: _decimal(percent) for code, percent in pairs}
            if len(given) != len(pairs) or given != dict(current):
                found[name] = pairs
        elif field.kind == "whole":
            if not raw:
                continue
            if not raw.lstrip("-").isdigit():
                raise InvalidInput.field(api_name, "must be a whole number")
            if int(raw) != current:
                found[name] = int(raw)
        else:
            if raw not in ("on", "off"):
                raise InvalidInput.field(api_name, "must be on or off")
            if (raw == "on") != current:
                found[name] = raw == "on"
    return found
