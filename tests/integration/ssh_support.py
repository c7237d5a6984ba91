"""Helpers for the VPS-experience tests: real ssh client, keys, a tiny .deb, waiting on sshd."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from containervps.config import get_settings

SSH_OPTS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
]


def make_key(directory: Path, name: str) -> Path:
    """A fresh ed25519 key pair; returns the private key's path."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path


def ssh(
    port: int,
    command: str,
    *,
    key: Path | None = None,
    password_file: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = 60,
    host: str | None = None,
    bind: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the real OpenSSH client as root@HOST:port, HOST being where the platform forwards
    SSH ports (default: the process settings' ``ssh_address``, the bridge's gateway unless
    set), from the source address ``bind`` if given; a key, or a password via askpass."""
    opts = [*SSH_OPTS, "-p", str(port), *(["-b", bind] if bind else [])]
    env = dict(os.environ)
    if key is not None:
        opts += ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key)]
    if password_file is not None:
        askpass = password_file.with_suffix(".askpass")
        askpass.write_text(f"#!/bin/sh\ncat {password_file}\n")
        askpass.chmod(0o700)
        env.update({"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
        opts += [
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]
    return subprocess.run(
        ["ssh", *opts, f"root@{host or get_settings().ssh_address}", command],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
        start_new_session=True,  # no controlling tty: ssh must use SSH_ASKPASS
        check=False,
    )


def wait_for_ssh(port: int, *, key: Path, timeout: float = 90, host: str | None = None) -> None:
    """Until sshd in the VPS accepts the key (host keys are made at first boot)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = ssh(port, "true", key=key, timeout=20, host=host)
        if last.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"ssh on port {port} not ready: {last.stderr.decode()[-500:]}")


def build_deb(directory: Path) -> Path:
    """A tiny .deb (package cvps-hello) that installs /usr/local/bin/cvps-hello."""
    root = directory / "cvps-hello"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: cvps-hello\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: containervps tests <root@localhost>\nDescription: test package\n"
    )
    script = root / "usr/local/bin/cvps-hello"
    script.write_text("#!/bin/sh\necho hello from a package\n")
    script.chmod(0o755)
    deb = directory / "cvps-hello.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb
