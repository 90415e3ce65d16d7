"""Envelope encryption for secrets at rest: a fresh KMS data key per secret, AES-256-GCM, bound to the
organization (KMS encryption context and GCM associated data), in a versioned blob."""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from loupe.config import get_settings

# Blob v1: version (1 byte) | length of the wrapped key (2 bytes, big-endian) | wrapped key | nonce (12) |
# ciphertext with its 16-byte tag.
FORMAT_V1 = 1
NONCE_BYTES = 12
HEADER = struct.Struct(">BH")


class CryptoUnavailable(RuntimeError):
    """KMS is not configured or cannot be reached."""


class DecryptionFailed(RuntimeError):
    """The blob is not one this service wrote for this organization, or it was altered."""


@dataclass(frozen=True)
class KmsSettings:
    """`LOUPE_KMS_KEY_ID`: the KMS key (id, ARN or alias) that wraps the data keys."""

    key_id: str


def kms_settings() -> KmsSettings:
    key_id = get_settings().kms_key_id
    if not key_id:
        raise CryptoUnavailable("LOUPE_KMS_KEY_ID is not set")
    return KmsSettings(key_id=key_id)


@functools.cache
def kms_client() -> Any:
    """Created on first use (boto3 costs cold-start time); AWS_ENDPOINT_URL points it at moto locally."""
    import boto3

    return boto3.client("kms")


def _context(organization_id: UUID) -> dict[str, str]:
    return {"organization_id": str(organization_id)}


def _associated_data(organization_id: UUID) -> bytes:
    return bytes([FORMAT_V1]) + organization_id.bytes


def encrypt(plaintext: bytes, organization_id: UUID) -> bytes:
    """Encrypt under a new data key that only this organization's context can unwrap."""
    from botocore.exceptions import BotoCoreError, ClientError

    settings = kms_settings()
    try:
        generated = kms_client().generate_data_key(
            KeyId=settings.key_id, KeySpec="AES_256", EncryptionContext=_context(organization_id)
        )
    except (BotoCoreError, ClientError) as error:
        raise CryptoUnavailable(f"KMS refused to generate a data key: {type(error).__name__}") from None
    wrapped: bytes = generated["CiphertextBlob"]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(generated["Plaintext"]).encrypt(nonce, plaintext, _associated_data(organization_id))
    return HEADER.pack(FORMAT_V1, len(wrapped)) + wrapped + nonce + sealed


def decrypt(blob: bytes, organization_id: UUID) -> bytes:
    """The plaintext of a blob `encrypt` wrote for this organization."""
    from botocore.exceptions import BotoCoreError, ClientError

    if len(blob) < HEADER.size:
        raise DecryptionFailed("the ciphertext is truncated")
    version, wrapped_length = HEADER.unpack_from(blob)
    if version != FORMAT_V1:
        raise DecryptionFailed(f"unknown ciphertext format {version}")
    start = HEADER.size
    wrapped = blob[start : start + wrapped_length]
    nonce = blob[start + wrapped_length : start + wrapped_length + NONCE_BYTES]
    sealed = blob[start + wrapped_length + NONCE_BYTES :]
    if len(wrapped) != wrapped_length or len(nonce) != NONCE_BYTES or not sealed:
        raise DecryptionFailed("the ciphertext is truncated")
    try:
        unwrapped = kms_client().decrypt(CiphertextBlob=wrapped, EncryptionContext=_context(organization_id))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("InvalidCiphertextException", "IncorrectKeyException"):
            raise DecryptionFailed("KMS does not recognise the data key") from None
        raise CryptoUnavailable(f"KMS refused to decrypt: {code or type(error).__name__}") from None
    except BotoCoreError as error:
        raise CryptoUnavailable(f"KMS is unreachable: {type(error).__name__}") from None
    try:
        return AESGCM(unwrapped["Plaintext"]).decrypt(nonce, sealed, _associated_data(organization_id))
    except InvalidTag:
        raise DecryptionFailed("the ciphertext was altered") from None
