"""Checks of user input that several services share. Each collects its problems by field."""

import re
import zoneinfo
from functools import cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 100
MAX_BIO_LENGTH = 2_000
NOTIFICATION_CHANNELS = frozenset({"EMAIL", "SMS", "PUSH", "IN_APP"})

# Matched with fullmatch: "$" would also let a value ending in a newline through.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# A Safaricom mobile number as Kenyans write it: 07.. or 01.., with +254 or 254 for the 0.
_KENYAN_MOBILE = re.compile(r"(?:\+?254|0)([17][0-9]{8})")
MAX_PHONE_INPUT_LENGTH = 32
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_COMMON_PASSWORDS_FILE = Path(__file__).parent / "common_passwords.txt"


class FieldErrors(dict[str, str]):
    """Problems found so far, by input field."""

    def check(self, field: str, problem: str | None) -> None:
        if problem is not None and field not in self:
            self[field] = problem


@cache
def _common_passwords() -> frozenset[str]:
    lines = _COMMON_PASSWORDS_FILE.read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def normalize_email(raw: str) -> str | None:
    """The address in its normal form, or None when it is not a valid address."""
    if len(raw) > MAX_EMAIL_LENGTH:
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def email_lookup_form(normalized: str) -> str:
    """An address lowered for rate-limit keys: Python's lower() folds at least every letter the
    database's lower() folds in the account lookup, so one account never gets two budgets."""
    return normalized.lower()


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters long"
    if password.lower() in _common_passwords():
        return "is one of the most common passwords; choose another"
    return None


def has_control_characters(text: str, *, allow_newlines: bool = False) -> bool:
    """Any character of Unicode's Cc category (tab, line feed and carriage return aside when
    ``allow_newlines``); a regular expression, so a long text costs microseconds."""
    pattern = _CONTROL_BUT_LINE_BREAKS if allow_newlines else _CONTROL
    return pattern.search(text) is not None


def clean_name(raw: str) -> tuple[str, str | None]:
    name = " ".join(raw.split())
    if not name:
        return name, "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return name, f"must be at most {MAX_NAME_LENGTH} characters long"
    if has_control_characters(name):
        return name, "must not contain control characters"
    return name, None


def clean_bio(raw: str) -> tuple[str | None, str | None]:
    bio = raw.strip()
    if len(bio) > MAX_BIO_LENGTH:
        return bio, f"must be at most {MAX_BIO_LENGTH} characters long"
    if has_control_characters(bio, allow_newlines=True):
        return bio, "must not contain control characters"
    return bio or None, None


def phone_problem(phone: str) -> str | None:
    if not _E164.fullmatch(phone):
        return "must be an international number in E.164 form, like +14155550123"
    return None


def kenyan_msisdn(phone: str) -> str | None:
    """A Kenyan mobile number as M-Pesa takes it (2547XXXXXXXX, 2541XXXXXXXX), from any of
    the ways it is written (0712 345 678, +254-712-345678, 254712345678); None if not one."""
    if len(phone) > MAX_PHONE_INPUT_LENGTH:
        return None
    found = _KENYAN_MOBILE.fullmatch(re.sub(r"[ \-]", "", phone))
    return f"254{found.group(1)}" if found else None


def currency_problem(code: str) -> str | None:
    return None if _CURRENCY.fullmatch(code) else "must be an ISO 4217 code, like EUR"


def language_problem(code: str) -> str | None:
    return None if _LANGUAGE.fullmatch(code) else "must be a language tag, like en or pt-BR"


def time_zone_problem(name: str) -> str | None:
    return None if name in _time_zones() else "must be an IANA time zone, like Europe/Lisbon"


def notification_channels_problem(channels: list[str]) -> str | None:
    unknown = sorted(set(channels) - NOTIFICATION_CHANNELS)
    return f"unknown channels: {', '.join(unknown)}" if unknown else None


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
