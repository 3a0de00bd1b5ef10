"""Encryption of secrets at rest: MultiFernet with keys from BASTION_SECRET_KEYS (first key encrypts)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEYS_VAR = "BASTION_SECRET_KEYS"


class SecretsError(Exception):
    """Encryption is misconfigured or a ciphertext cannot be read; never carries key or ciphertext."""


class SecretBox:
    """Encrypts and decrypts small JSON secrets (exchange credentials); rotation re-encrypts with key #1."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretsError(
                f"{KEYS_VAR} is not set: exchange credentials cannot be stored or read. "
                "Generate a key with `bastion keys genkey` and set it in the environment or .env."
            )
        fernets = []
        for index, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode() if isinstance(key, str) else key))
            except (ValueError, TypeError):
                raise SecretsError(
                    f"{KEYS_VAR} key #{index} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, for `bastion keys genkey`."""
        return Fernet.generate_key().decode()

    def encrypt(self, secret: dict[str, Any]) -> str:
        """Ciphertext (url-safe text) of a JSON-serialisable secret."""
        return self._fernet.encrypt(json.dumps(secret, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """The secret behind `token`; SecretsError when no configured key opens it or it was tampered with."""
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise SecretsError(
                f"stored credentials cannot be decrypted with the keys in {KEYS_VAR} "
                "(wrong key, a key removed before rotation, or corrupted data)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the first (newest) key; old keys may then be retired."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, ValueError, TypeError):
            raise SecretsError(f"stored credentials cannot be rotated: no key in {KEYS_VAR} opens them") from None
