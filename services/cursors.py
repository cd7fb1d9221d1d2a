"""Opaque cursors for keyset pages: a few JSON values, base64url without padding.

Cursors are not secrets, only opaque: a client passes back what it was given, and anything else
is BAD_USER_INPUT on ``after``.
"""

import base64
import binascii
import json
from typing import Any

from services.errors import InvalidInput


def pack(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def unpack(cursor: str, *, size: int, problem: str) -> list[Any]:
    """The ``size`` values in ``cursor``; BAD_USER_INPUT with ``problem`` for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise InvalidInput.field("after", problem)
    return values
