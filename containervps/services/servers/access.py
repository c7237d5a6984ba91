"""Getting into a VPS: forwarded SSH ports, root's authorized_keys and a one-time root password."""

from __future__ import annotations

import logging
import secrets
import socket
import string

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import HostSetupError, LxdError, ResourceUnavailable
from containervps.lxd import Lxd
from containervps.services.servers.queries import held_by_live
from containervps.shell import require_tool, run

log = logging.getLogger(__name__)

__all__ = [
    "allocate_ssh_port",
    "install_access",
    "new_root_password",
    "set_root_password",
]

PASSWORD_ALPHABET = string.ascii_letters + string.digits
# Replaces root's hash in /etc/shadow: works with BusyBox (no chpasswd) and Debian alike.
# Crypt hashes use only [A-Za-z0-9./$], none of which is special in a sed replacement.
SET_HASH_SCRIPT = 'sed -i "s|^root:[^:]*:|root:$CVPS_ROOT_HASH:|" /etc/shadow'


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def allocate_ssh_port(session: Session, settings: Settings) -> int:
    """The lowest port of the range that no live server holds and nothing on the host uses.

    Call inside the BEGIN IMMEDIATE transaction that inserts the server; a unique index on
    live servers' ports backs this up.
    """
    if not _bindable(settings.ssh_address, 0):
        # With cluster members the servers' gateway is on the members, not here.
        raise HostSetupError(
            f"the SSH address {settings.ssh_address} is not an address of this host",
            details={"ssh_address": settings.ssh_address},
            resolution="set CONTAINERVPS_SSH_LISTEN_ADDRESS to an address of this host",
        )
    taken = held_by_live(session, Server.ssh_port)
    for port in range(settings.ssh_port_min, settings.ssh_port_max + 1):
        if port not in taken and _bindable(settings.ssh_address, port):
            return port
    raise ResourceUnavailable(
        "no free SSH port on this host",
        details={
            "resource": "ssh_ports",
            "free": 0,
            "range": [settings.ssh_port_min, settings.ssh_port_max],
        },
        resolution="the operator can widen CONTAINERVPS_SSH_PORT_MIN/MAX",
    )


def new_root_password(settings: Settings) -> tuple[str, str]:
    """A random root password and its SHA-512 crypt hash (the password is never stored)."""
    password = "".join(
        secrets.choice(PASSWORD_ALPHABET) for _ in range(settings.root_password_length)
    )
    openssl = require_tool("openssl", package="openssl")
    hashed = run(
        [openssl, "passwd", "-6", "-stdin"], what="hash root password", input_text=password
    )
    return password, hashed.strip()


def install_access(lxd: Lxd, server: Server) -> None:
    """Write root's authorized_keys into the disk (password logins are allowed by the image)."""
    if not server.ssh_keys:
        return
    name, project = server.lxd_name, server.lxd_project
    lxd.files.mkdir(name=name, project=project, path="/root/.ssh", mode=0o700)
    content = "".join(line + "\n" for line in server.ssh_keys).encode()
    lxd.files.push(
        name=name, project=project, path="/root/.ssh/authorized_keys", content=content, mode=0o600
    )


def set_root_password(lxd: Lxd, server: Server, hashed: str) -> None:
    """Set root's password hash inside the running VPS."""
    result = lxd.instances.exec(
        name=server.lxd_name,
        project=server.lxd_project,
        command=["sh", "-c", SET_HASH_SCRIPT],
        environment={"CVPS_ROOT_HASH": hashed},
    )
    if not result.ok:
        raise LxdError(f"could not set the root password: {result.stderr.strip()}")
