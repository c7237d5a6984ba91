"""Validating OpenSSH public keys and computing their fingerprints (as `ssh-keygen -l`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from containervps.errors import InvalidInput

KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """SHA256:... exactly as OpenSSH prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    @property
    def openssh(self) -> str:
        """The canonical one-line form for authorized_keys."""
        line = f"{self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{line} {self.comment}" if self.comment else line


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(
        f"invalid SSH public key: {reason}",
        details={"field": "public_key"},
        resolution="paste one line of ~/.ssh/id_ed25519.pub (type, base64 key, comment)",
    )


def parse_public_key(text: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise InvalidInput saying what is wrong."""
    parts = text.strip().split(None, 2)
    if "\n" in text.strip() or len(parts) < 2:
        raise _bad("expected one line '<type> <base64> [comment]'")
    key_type, encoded = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise _bad(f"unsupported key type {key_type!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
        inner_type, offset = _read_string(blob, 0)
    except (binascii.Error, ValueError) as exc:
        raise _bad("the key data is not valid base64 of an SSH key") from exc
    if inner_type.decode(errors="replace") != key_type:
        raise _bad(f"the key data is a {inner_type.decode(errors='replace')!r} key, not {key_type}")
    if key_type == "ssh-rsa":
        try:
            _exponent, offset = _read_string(blob, offset)
            modulus, _ = _read_string(blob, offset)
        except ValueError as exc:
            raise _bad("truncated RSA key") from exc
        bits = int.from_bytes(modulus, "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise _bad(f"RSA key of {bits} bits; at least {MIN_RSA_BITS} are required")
    elif key_type == "ssh-ed25519":
        try:
            point, _ = _read_string(blob, offset)
        except ValueError as exc:
            raise _bad("truncated ed25519 key") from exc
        if len(point) != 32:
            raise _bad("ed25519 key is not 32 bytes")
    return PublicKey(
        key_type=key_type, blob=blob, comment=parts[2].strip() if len(parts) > 2 else ""
    )
