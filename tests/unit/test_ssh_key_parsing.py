"""SSH public keys are parsed for real: what `ssh-keygen -l` rejects is refused, with reasons."""

from __future__ import annotations

import base64
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import SshKey, Tenant
from containervps.errors import InvalidInput
from containervps.services.tenancy import ssh_keys
from containervps.services.tenancy.ssh_keys import parse_public_key

Key = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _line(key_type: str, blob: bytes, comment: str = "") -> str:
    return f"{key_type} {base64.b64encode(blob).decode()}" + (f" {comment}" if comment else "")


def _openssh(key: Key) -> tuple[str, bytes]:
    """(type, blob) as OpenSSH writes the public key."""
    key_type, encoded = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()
    return key_type.decode(), base64.b64decode(encoded)


def _ed25519() -> Key:
    return ed25519.Ed25519PrivateKey.generate().public_key()


def _ecdsa(curve: ec.EllipticCurve) -> Callable[[], Key]:
    return lambda: ec.generate_private_key(curve).public_key()


def _rsa(bits: int) -> Callable[[], Key]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()


def _security_key(plain: Key, sk_type: str) -> tuple[str, bytes]:
    """A FIDO key as ssh-keygen -t ed25519-sk/ecdsa-sk writes it: the key plus an application."""
    _, blob = _openssh(plain)
    (length,) = struct.unpack(">I", blob[:4])
    return sk_type, _string(sk_type.encode()) + blob[4 + length :] + _string(b"ssh:")


def _keygen_fingerprint(tmp_path: Path, line: str) -> str | None:
    """The SHA256 fingerprint ssh-keygen -l prints, or None when it refuses the key."""
    pub = tmp_path / "key.pub"
    pub.write_text(line + "\n")
    run = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True)
    return run.stdout.split()[1] if run.returncode == 0 else None


GOOD: dict[str, Callable[[], tuple[str, bytes]]] = {
    "ed25519": lambda: _openssh(_ed25519()),
    "ecdsa-256": lambda: _openssh(_ecdsa(ec.SECP256R1())()),
    "ecdsa-384": lambda: _openssh(_ecdsa(ec.SECP384R1())()),
    "ecdsa-521": lambda: _openssh(_ecdsa(ec.SECP521R1())()),
    "rsa-2048": lambda: _openssh(_rsa(2048)()),
    "rsa-3072": lambda: _openssh(_rsa(3072)()),
    "ed25519-sk": lambda: _security_key(_ed25519(), "sk-ssh-ed25519@openssh.com"),
    "ecdsa-sk": lambda: _security_key(
        _ecdsa(ec.SECP256R1())(), "sk-ecdsa-sha2-nistp256@openssh.com"
    ),
}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_keys_of_each_type_parse_to_the_fingerprint_ssh_keygen_prints(
    kind: str, tmp_path: Path
) -> None:
    key_type, blob = GOOD[kind]()
    line = _line(key_type, blob, "me@laptop")
    key = parse_public_key(line)
    assert key.key_type == key_type and key.blob == blob and key.comment == "me@laptop"
    assert key.openssh == line
    assert key.fingerprint == _keygen_fingerprint(tmp_path, line)


def test_the_stored_form_is_canonical() -> None:
    key_type, blob = GOOD["ed25519"]()
    encoded = base64.b64encode(blob).decode()
    messy = f"  {key_type}\t{encoded}   Jürgen's  laptop \r\n"
    assert parse_public_key(messy).openssh == f"{key_type} {encoded} Jürgen's  laptop"
    assert parse_public_key(f"{key_type} {encoded}").openssh == f"{key_type} {encoded}"


def _off_curve(blob: bytes) -> bytes:
    """An ECDSA blob whose point's Y coordinate is changed: no longer on the curve."""
    return blob[:-1] + bytes([blob[-1] ^ 1])


def _bad_keys() -> dict[str, str]:
    ed_type, ed_blob = GOOD["ed25519"]()
    ec_type, ec_blob = GOOD["ecdsa-256"]()
    rsa_type, rsa_blob = GOOD["rsa-2048"]()
    p521_type, p521_blob = GOOD["ecdsa-521"]()
    sk_type, sk_blob = GOOD["ecdsa-sk"]()
    skd_type, skd_blob = GOOD["ed25519-sk"]()
    return {
        "ecdsa point off the curve": _line(ec_type, _off_curve(ec_blob)),
        "ecdsa-sk point off the curve": _line(
            sk_type, _off_curve(sk_blob[: -len(_string(b"ssh:"))]) + _string(b"ssh:")
        ),
        "ecdsa-521 point off the curve": _line(p521_type, _off_curve(p521_blob)),
        "ed25519 with no key data": _line(ed_type, _string(ed_type.encode())),
        "ecdsa with no key data": _line(ec_type, _string(ec_type.encode())),
        "rsa with no key data": _line(rsa_type, _string(rsa_type.encode())),
        "ed25519-sk with no key data": _line(skd_type, _string(skd_type.encode())),
        "ecdsa-sk with no key data": _line(sk_type, _string(sk_type.encode())),
        "ed25519-sk with no application": _line(skd_type, skd_blob[: -len(_string(b"ssh:"))]),
        "ed25519 with trailing bytes": _line(ed_type, ed_blob + b"\x00\x00\x00\x01x"),
        "ecdsa with trailing bytes": _line(ec_type, ec_blob + b"xx"),
        "rsa with trailing bytes": _line(rsa_type, rsa_blob + _string(b"more")),
        "ed25519 point of 31 bytes": _line(ed_type, _string(ed_type.encode()) + _string(b"a" * 31)),
        "truncated rsa": _line(rsa_type, rsa_blob[:-10]),
        "type mismatch": _line(ed_type, rsa_blob),
    }


@pytest.mark.parametrize("case", sorted(_bad_keys()))
def test_keys_ssh_keygen_rejects_are_refused_with_a_reason(case: str, tmp_path: Path) -> None:
    line = _bad_keys()[case]
    assert _keygen_fingerprint(tmp_path, line) is None, "ssh-keygen accepts it: not a bad key"
    with pytest.raises(InvalidInput) as refused:
        parse_public_key(line)
    assert refused.value.details["field"] == "public_key"
    assert refused.value.details["reason"]
    assert refused.value.code == "invalid_input"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "one line"),
        ("ssh-ed25519", "one line"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "unsupported key type"),
        ("ssh-ed25519-cert-v01@openssh.com AAAA", "unsupported key type"),
        ("ssh-ed25519 not*base64", "base64"),
        ("ssh-ed25519 AAAA", "base64"),
    ],
)
def test_malformed_lines_are_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as refused:
        parse_public_key(text)
    assert refused.value.details["field"] == "public_key"


def test_a_small_rsa_key_is_refused() -> None:
    with pytest.raises(InvalidInput, match="1024 bits"):
        parse_public_key(_line(*_openssh(_rsa(1024)())))


def test_unsupported_type_lists_the_accepted_ones() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_public_key("ssh-dss AAAAB3NzaC1kc3M=")
    assert refused.value.details["accepted"] == list(ssh_keys.KEY_TYPES)


@pytest.mark.parametrize(
    "comment",
    ["evil\x1b[2Jclear", "bell\x07", "nul\x00byte", "cr\rreturn", "tab\there", "x" * 256, "\u202e"],
)
def test_comments_must_be_printable_text_of_sane_length(comment: str) -> None:
    line = _line(*GOOD["ed25519"](), comment)
    with pytest.raises(InvalidInput) as refused:
        parse_public_key(line)
    assert refused.value.details["field"] == "public_key"


@pytest.fixture
def tenant_id(db: Settings) -> int:
    with session_scope(db) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        return tenant.id


def test_add_key_stores_the_canonical_form_and_checks_the_name(
    db: Settings, tenant_id: int
) -> None:
    key_type, blob = GOOD["ecdsa-256"]()
    row = ssh_keys.add_key(
        db, tenant_id=tenant_id, name="laptop", public_key=_line(key_type, blob, " a b ") + "\n"
    )
    assert row.public_key == _line(key_type, blob, "a b")
    assert row.fingerprint == parse_public_key(row.public_key).fingerprint
    for name in ("laptop\n", "", "-x", "a" * 64):
        with pytest.raises(InvalidInput) as refused:
            ssh_keys.add_key(
                db, tenant_id=tenant_id, name=name, public_key=_line(*GOOD["ed25519"]())
            )
        assert refused.value.details["field"] == "name"


def test_a_stored_key_that_no_longer_parses_is_refused_at_create(
    db: Settings, tenant_id: int
) -> None:
    ec_type, ec_blob = GOOD["ecdsa-256"]()
    with session_scope(db) as session:  # a row written before keys were parsed for real
        session.add(
            SshKey(
                tenant_id=tenant_id,
                name="old",
                fingerprint="SHA256:x",
                public_key=_line(ec_type, _off_curve(ec_blob)),
            )
        )
    with pytest.raises(InvalidInput) as refused:
        ssh_keys.resolve_keys(db, tenant_id=tenant_id, refs=["old"])
    assert refused.value.details["field"] == "ssh_keys"
    assert refused.value.details["value"] == "old"
