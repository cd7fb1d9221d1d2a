"""Encryption of personal fields at rest (phone numbers, ...) with AES-256-GCM."""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class FieldCipher:
    def __init__(self, key: str) -> None:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        if len(raw) != 32:
            raise ValueError("the field encryption key must be 32 bytes, url-safe base64")
        self._aead = AESGCM(raw)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """``context`` (say, the column and the row) binds a ciphertext to its place."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, *, context: str) -> str | None:
        """The plaintext; None when the ciphertext was tampered with or is not ours."""
        version, _, payload = ciphertext.partition(".")
        if version != _VERSION:
            return None
        try:
            raw = base64.urlsafe_b64decode(payload)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError):
            return None
