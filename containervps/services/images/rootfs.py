"""Building root filesystems offline: BusyBox from busybox-static, Debian with debootstrap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from containervps.services.images import guest_tmpfs
from containervps.services.images.recipes import ImageRecipe
from containervps.shell import require_tool, run

BUSYBOX_INITTAB = """\
::sysinit:/etc/init.d/rcS
::respawn:/sbin/udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script -t 1000 -T 1 -A 2
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""

# No /proc remount here: LXC mounts /proc and lxcfs overlays /proc/meminfo and friends.
BUSYBOX_RCS = (
    """\
#!/bin/sh
mkdir -p /run /tmp /var/log /var/run
hostname -F /etc/hostname
ip link set lo up
"""
    + guest_tmpfs.SCRIPT_PATH
    + "\n"
)

UDHCPC_SCRIPT = """\
#!/bin/sh
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    if [ -n "$router" ]; then
      while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
      for r in $router; do route add default gw "$r" dev "$interface"; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
"""

# BusyBox's free calls sysinfo(2), which LXD 5.0 cannot intercept, so it would show the host's
# memory. This free reads /proc/meminfo, which lxcfs fills with the VPS's own limit.
BUSYBOX_FREE = r"""#!/bin/sh
unit=1024
case "$1" in -b) unit=1;; -m) unit=1048576;; -g) unit=1073741824;; esac
exec awk -v u="$unit" '
/^MemTotal:/{t=$2} /^MemFree:/{f=$2} /^MemAvailable:/{a=$2} /^Buffers:/{b=$2}
/^Cached:/{c=$2} /^Shmem:/{s=$2} /^SwapTotal:/{st=$2} /^SwapFree:/{sf=$2}
END {
  k = 1024 / u
  printf "%15s%12s%12s%12s%12s%12s\n", "total", "used", "free", "shared", "buff/cache", "available"
  printf "Mem:%11d%12d%12d%12d%12d%12d\n", t*k, (t-f-b-c)*k, f*k, s*k, (b+c)*k, a*k
  printf "Swap:%10d%12d%12d\n", st*k, (st-sf)*k, sf*k
}' /proc/meminfo
"""

NETWORKD_ETH0 = "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n"

# Root's password stays locked unless the platform sets one (a server created without SSH keys),
# so allowing root password logins opens nothing on servers that use keys.
SSHD_ROOT_LOGIN = "# containervps\nPermitRootLogin yes\nPasswordAuthentication yes\n"

# Host keys are made at first boot so that no two VPSs share them: Ed25519 and ECDSA only.
# `ssh-keygen -A` also makes an RSA-3072 key, 0.76 s of CPU per first boot here, the largest
# share of a Debian server's boot on a busy host (`bench scale --image debian-12`).
SSH_HOSTKEYS_SCRIPT = """\
#!/bin/sh
for type in ed25519 ecdsa; do
  key=/etc/ssh/ssh_host_${type}_key
  [ -s "$key" ] || ssh-keygen -q -t "$type" -N '' -f "$key" || exit 1
done
"""
SSH_HOSTKEYS_PATH = "/usr/local/sbin/containervps-ssh-hostkeys"
SSH_HOSTKEYS_DROPIN = f"""\
[Service]
ExecStartPre=
ExecStartPre={SSH_HOSTKEYS_PATH}
ExecStartPre=/usr/sbin/sshd -t
"""


# systemd caps services and user slices at a share of the tasks the system may run, which it
# reads from the root cgroup's pids.max: inside a VPS that is the plan's whole process limit,
# so on `nano` (256) a service got 38 tasks and a user's logins 84. The plan's limit already
# bounds the server as a whole (LXD's limits.processes); inside, nothing shares it out.
TASKS_UNCAPPED = (
    "# containervps: the plan's limit bounds the server\n[Manager]\nDefaultTasksMax=infinity\n"
)
USER_SLICE_UNCAPPED = (
    "# containervps: see system.conf.d/60-containervps.conf\n[Slice]\nTasksMax=infinity\n"
)


def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def build_busybox(root: Path) -> None:
    """A BusyBox system with init, DHCP on eth0 and every applet linked."""
    busybox = Path(require_tool("busybox", package="busybox-static")).resolve()
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "dev",
        "proc",
        "sys",
        "root",
        "run",
        "var/log",
        "usr/share/udhcpc",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox, root / "bin/busybox")
    for applet in run([str(busybox), "--list-full"], what="list busybox applets").split():
        link = root / applet
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (root / "usr/bin/free").unlink(missing_ok=True)
    _write(root / "usr/bin/free", BUSYBOX_FREE, mode=0o755)
    _write(root / guest_tmpfs.SCRIPT_PATH.lstrip("/"), guest_tmpfs.SIZE_TMPFS_SCRIPT, mode=0o755)
    _write(root / "etc/inittab", BUSYBOX_INITTAB)
    _write(root / "etc/init.d/rcS", BUSYBOX_RCS, mode=0o755)
    _write(root / "usr/share/udhcpc/default.script", UDHCPC_SCRIPT, mode=0o755)
    _write(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(root / "etc/group", "root:x:0:\n")
    _write(root / "etc/shadow", "root:*:19000:0:99999:7:::\n", mode=0o600)
    _write(root / "etc/hostname", "busybox\n")
    _write(root / "etc/hosts", "127.0.0.1 localhost\n")
    _write(root / "etc/os-release", 'NAME="BusyBox"\nID=busybox\nVERSION_ID="1.35"\n')


def build_debian(root: Path, recipe: ImageRecipe, *, package_cache: Path) -> None:
    """Debian minbase via debootstrap, made fit to be a VPS (DHCP, fresh ssh keys, no ids)."""
    debootstrap = require_tool("debootstrap", package="debootstrap")
    package_cache.mkdir(parents=True, exist_ok=True)
    run(
        [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            f"--cache-dir={package_cache}",
            recipe.suite,
            str(root),
            recipe.mirror,
        ],
        what=f"debootstrap {recipe.suite} from {recipe.mirror}",
        timeout=1800,
    )
    run(
        ["chroot", str(root), "systemctl", "enable", "systemd-networkd", "systemd-resolved"],
        what="enable networkd in the image",
    )
    _write(root / "etc/systemd/network/10-eth0.network", NETWORKD_ETH0)
    _install_tmpfs_unit(root)
    _write(root / SSH_HOSTKEYS_PATH.lstrip("/"), SSH_HOSTKEYS_SCRIPT, mode=0o755)
    _write(root / "etc/systemd/system/ssh.service.d/hostkeys.conf", SSH_HOSTKEYS_DROPIN)
    _write(root / "etc/ssh/sshd_config.d/60-containervps.conf", SSHD_ROOT_LOGIN)
    _write(root / "etc/systemd/system.conf.d/60-containervps.conf", TASKS_UNCAPPED)
    _write(root / "etc/systemd/system/user-.slice.d/60-containervps.conf", USER_SLICE_UNCAPPED)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    resolv = root / "etc/resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    resolv.symlink_to("/run/systemd/resolve/stub-resolv.conf")
    _write(root / "etc/machine-id", "")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    _write(root / "etc/hostname", "debian\n")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / junk).glob("*"):
            if entry.is_file():
                entry.unlink()


def _install_tmpfs_unit(root: Path) -> None:
    """The boot step sizing /dev/shm, /run and friends from the VPS's memory limit."""
    _write(root / guest_tmpfs.SCRIPT_PATH.lstrip("/"), guest_tmpfs.SIZE_TMPFS_SCRIPT, mode=0o755)
    unit = root / "etc/systemd/system" / guest_tmpfs.UNIT_NAME
    _write(unit, guest_tmpfs.SYSTEMD_UNIT)
    wants = root / "etc/systemd/system/sysinit.target.wants" / guest_tmpfs.UNIT_NAME
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{guest_tmpfs.UNIT_NAME}")


def lxd_metadata(recipe: ImageRecipe, *, created: int) -> str:
    """metadata.yaml of a unified LXD image tarball."""
    props = "\n".join(f"  {k}: {v!r}" for k, v in recipe.properties.items())
    return (
        f"architecture: {os.uname().machine}\ncreation_date: {created}\nproperties:\n{props}\n"
        "templates:\n"
        "  /etc/hostname:\n    when: [create, copy, rename]\n    template: hostname.tpl\n"
        "  /etc/hosts:\n    when: [create, copy, rename]\n    template: hosts.tpl\n"
    )


def write_templates(directory: Path) -> None:
    """LXD templates that give each VPS its own hostname."""
    _write(directory / "hostname.tpl", "{{ container.name }}\n")
    _write(directory / "hosts.tpl", "127.0.0.1 localhost\n127.0.1.1 {{ container.name }}\n")
