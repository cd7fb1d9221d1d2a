"""Receipts in tests: an admin to read them, and the text of a receipt's PDF."""

import re
import zlib

import httpx
from sqlalchemy import update

from db.database import Database
from db.models import User
from tests.accounts_helpers import bearer, register, unique_email
from tests.helpers import committed


async def an_admin(client: httpx.AsyncClient, database: Database) -> dict[str, str]:
    email = unique_email("admin")
    token = (await register(client, email=email))["accessToken"]
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == email).values(roles=["GUEST", "ADMIN"])
        )
    return bearer(token)


def pdf_text(pdf: bytes) -> bytes:
    """The page content of a PDF fpdf2 wrote: its streams, inflated where compressed."""
    found = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            found.append(zlib.decompress(stream))
        except zlib.error:
            found.append(stream)
    return b"\n".join(found)
