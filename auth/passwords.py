"""Password hashing with argon2id, off the event loop.

One check costs hundreds of milliseconds of CPU by design, so it runs in a worker thread, and a
semaphore bounds how many run at once: a burst of logins queues instead of starving the loop.
"""

import asyncio
from functools import cached_property

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int, max_concurrent: int) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, type=argon2.Type.ID
        )
        self._max_concurrent = max_concurrent

    @cached_property
    def _slots(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self._max_concurrent)

    @cached_property
    def _dummy_hash(self) -> str:
        # Checked when there is no account, so that an unknown email costs what a wrong
        # password costs and timing tells nothing.
        return self._argon2.hash("no account has this password")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash, spends the same time and answers False."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            self._argon2.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
