"""Validating OpenSSH public keys and computing their fingerprints (as `ssh-keygen -l`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_key,
)
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import SshKey
from containervps.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "KEY_TYPES",
    "PublicKey",
    "add_key",
    "delete_key",
    "get_key",
    "list_keys",
    "parse_public_key",
    "resolve_keys",
]

KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,62}")
MAX_KEYS_PER_SERVER = 32

# What OpenSSH 9 accepts by default; ssh-dss is gone from it, certificates are not keys.
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
SECURITY_KEY_PREFIX = "sk-"
MIN_RSA_BITS = 2048
MAX_COMMENT_CHARS = 255
FIELD_SEPARATOR = re.compile(r"[ \t]+")  # as in authorized_keys: spaces or tabs


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes  # the canonical wire form, re-encoded from the parsed key
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


def _bad(reason: str, **details: object) -> InvalidInput:
    return InvalidInput(
        f"invalid SSH public key: {reason}",
        details={"field": "public_key", "reason": reason, **details},
        resolution="paste one line of ~/.ssh/id_ed25519.pub (type, base64 key, comment)",
    )


def _ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


def _fields(blob: bytes) -> list[bytes]:
    """The length-prefixed fields of a key blob (every field of these key types is one)."""
    fields, offset = [], 0
    while offset < len(blob):
        field, offset = _read_string(blob, offset)
        fields.append(field)
    return fields


def _canonical_blob(key_type: str, blob: bytes) -> bytes:
    """Parse the key for real (curve points, sizes, no trailing bytes) and re-encode it."""
    try:
        parsed = load_ssh_public_key(f"{key_type} ".encode() + base64.b64encode(blob))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _bad(f"the key data is not a valid {key_type} key ({exc})") from exc
    if isinstance(parsed, rsa.RSAPublicKey) and parsed.key_size < MIN_RSA_BITS:
        raise _bad(f"RSA key of {parsed.key_size} bits; at least {MIN_RSA_BITS} are required")
    plain = base64.b64decode(parsed.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()[1])
    if not key_type.startswith(SECURITY_KEY_PREFIX):
        return plain
    # A security key is the plain key under its sk- name plus the FIDO application string;
    # cryptography checks the key and drops the application, so it is taken from the blob.
    inner = _fields(plain)[1:]
    application = _fields(blob)[-1]
    return b"".join(_ssh_string(f) for f in [key_type.encode(), *inner, application])


def _comment(text: str) -> str:
    comment = text.strip(" \t")
    if len(comment) > MAX_COMMENT_CHARS:
        raise _bad(f"the comment is longer than {MAX_COMMENT_CHARS} characters", part="comment")
    if not comment.isprintable():
        # Control characters (ESC, BEL, NUL...) would be echoed into terminals and logs.
        raise _bad("the comment contains control or non-printable characters", part="comment")
    return comment


def parse_public_key(text: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise InvalidInput saying what is wrong."""
    line = text.strip(" \t\r\n")
    parts = FIELD_SEPARATOR.split(line, maxsplit=2)
    if "\n" in line or "\r" in line or len(parts) < 2:
        raise _bad("expected one line '<type> <base64> [comment]'")
    key_type, encoded = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise _bad(f"unsupported key type {key_type[:60]!r}", accepted=list(KEY_TYPES))
    try:
        blob = base64.b64decode(encoded, validate=True)
        inner_type, _ = _read_string(blob, 0)
    except (binascii.Error, ValueError) as exc:
        raise _bad("the key data is not valid base64 of an SSH key") from exc
    if inner_type != key_type.encode():
        shown = inner_type[:60].decode(errors="replace")
        raise _bad(f"the key data is a {shown!r} key, not {key_type}")
    return PublicKey(
        key_type=key_type,
        blob=_canonical_blob(key_type, blob),
        comment=_comment(parts[2]) if len(parts) > 2 else "",
    )


def add_key(settings: Settings, *, tenant_id: int, name: str, public_key: str) -> SshKey:
    """Store a validated key for a tenant (names and fingerprints unique per tenant)."""
    if not KEY_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid key name {name!r}: 1-63 of A-Z a-z 0-9 . _ @ -", details={"field": "name"}
        )
    key = parse_public_key(public_key)
    with session_scope(settings, immediate=True) as session:
        mine = select(SshKey).where(SshKey.tenant_id == tenant_id)
        if session.exec(mine.where(SshKey.name == name)).first():
            raise Conflict(f"an SSH key named {name!r} already exists", details={"field": "name"})
        same = session.exec(mine.where(SshKey.fingerprint == key.fingerprint)).first()
        if same:
            raise Conflict(
                f"this key is already stored as {same.name!r}",
                details={"field": "public_key", "ssh_key_id": same.id},
            )
        row = SshKey(
            tenant_id=tenant_id, name=name, fingerprint=key.fingerprint, public_key=key.openssh
        )
        session.add(row)
        return row


def list_keys(settings: Settings, *, tenant_id: int) -> list[SshKey]:
    """A tenant's keys, oldest first."""
    with session_scope(settings) as session:
        query = select(SshKey).where(SshKey.tenant_id == tenant_id).order_by(col(SshKey.id))
        return list(session.exec(query).all())


def get_key(settings: Settings, *, tenant_id: int, key_id: int) -> SshKey:
    """One of the tenant's keys; another tenant's id is NotFound."""
    with session_scope(settings) as session:
        row = session.get(SshKey, key_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"SSH key {key_id} not found")
        return row


def delete_key(settings: Settings, *, tenant_id: int, key_id: int) -> None:
    """Forget a key (servers that got it keep it until they are rebuilt without it)."""
    with session_scope(settings, immediate=True) as session:
        row = session.get(SshKey, key_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"SSH key {key_id} not found")
        session.delete(row)


def resolve_keys(settings: Settings, *, tenant_id: int, refs: list[str | int]) -> list[str]:
    """authorized_keys lines for stored keys named by id or name, in the order given."""
    if len(refs) > MAX_KEYS_PER_SERVER:
        raise InvalidInput(f"at most {MAX_KEYS_PER_SERVER} SSH keys", details={"field": "ssh_keys"})
    by_ref: dict[str, SshKey] = {}
    for key in list_keys(settings, tenant_id=tenant_id):
        by_ref[str(key.id)] = by_ref[key.name] = key
    lines: list[str] = []
    for ref in refs:
        found = by_ref.get(str(ref))
        if found is None:
            raise InvalidInput(
                f"unknown SSH key {ref!r}",
                details={"field": "ssh_keys", "value": str(ref)[:100]},
                resolution="add it first with POST /v1/ssh_keys",
            )
        line = _checked_line(found)
        if line not in lines:
            lines.append(line)
    return lines


def _checked_line(key: SshKey) -> str:
    """A stored key parsed again: rows written before keys were parsed for real may not pass,
    and a server whose only key sshd rejects has no way in."""
    try:
        return parse_public_key(key.public_key).openssh
    except InvalidInput as exc:
        reason = exc.details.get("reason")
        raise InvalidInput(
            f"stored SSH key {key.name!r} is not a valid key: {reason}",
            details={"field": "ssh_keys", "value": key.name, "reason": reason},
            resolution="delete it and add the key again with POST /v1/ssh_keys",
        ) from exc
