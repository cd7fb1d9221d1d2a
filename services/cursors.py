"""Opaque cursors for keyset pages: a few JSON values, base64url without padding.

Cursors are not secrets, only opaque: a client passes back what it was given, and anything else
is BAD_USER_INPUT on ``after``.
"""

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from services.errors import InvalidInput

# json.dumps with separators builds an encoder each call; a search page packs 21 cursors.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def pack(*values: Any) -> str:
    raw = _COMPACT.encode(values)
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


def pack_moment(moment: datetime, row_id: int) -> str:
    """The cursor of a row in a list ordered by an instant, then the row's id."""
    return pack(moment.isoformat(), row_id)


def unpack_moment(cursor: str) -> tuple[datetime, int]:
    """The instant and id of a ``pack_moment`` cursor; BAD_USER_INPUT for anything else."""
    problem = "is not a cursor of this list"
    moment, row_id = unpack(cursor, size=2, problem=problem)
    try:
        if not isinstance(row_id, int) or not isinstance(moment, str):
            raise TypeError
        return datetime.fromisoformat(moment), row_id
    except (ValueError, TypeError):
        raise InvalidInput.field("after", problem) from None
