"""tmpfs mounts inside a VPS sized from its memory limit, not from the host's RAM.

The kernel sizes a tmpfs from the host's RAM (half of it by default, systemd asks 20% for
/run), so a 256 MiB VPS got a 12 GiB /dev/shm. tmpfs pages are charged to the VPS's memory
cgroup and cannot be reclaimed without swap: filling such a /dev/shm made the kernel kill the
VPS's own processes. Sized like a VM with the plan's RAM, a full /dev/shm answers ENOSPC.

The images carry a script that reads the limit from /proc/meminfo (lxcfs shows the VPS's
memory limit there, at once after a resize) and remounts the tmpfs mounts: at every boot (an
init step of each image) and, run by the platform, after a resize. LXD cannot size them from
outside: the mounts are made by the guest's own init, and restricted projects refuse raw.lxc.
"""

from __future__ import annotations

__all__ = ["SCRIPT_PATH", "SHARES", "SIZE_TMPFS_SCRIPT", "SYSTEMD_UNIT", "UNIT_NAME"]

SCRIPT_PATH = "/usr/libexec/containervps/size-tmpfs"
UNIT_NAME = "containervps-tmpfs.service"

# Percent of the memory limit per tmpfs: what a Linux VM with that RAM gets (tmpfs default is
# half of RAM, systemd mounts /run at 20%, logind sizes /run/user/<uid> at 10%).
SHARES = {"/dev/shm": 50, "/run": 20, "/tmp": 50, "/run/user/*": 10}

_CALLS = "\n".join(
    f'for d in {target}; do size "$d" {pct}{" create" if target == "/dev/shm" else ""}; done'
    for target, pct in SHARES.items()
)

SIZE_TMPFS_SCRIPT = (
    r"""#!/bin/sh
# containervps: size this VPS's tmpfs mounts from its memory limit (MemTotal, which lxcfs
# fills with the limit), as on a VM with that much RAM. Runs at boot and after a resize.
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
[ -n "$mem_kib" ] || { echo "size-tmpfs: no MemTotal" >&2; exit 1; }
status=0
size() {  # mountpoint percent [create]
    want=$((mem_kib * $2 / 100))
    line=$(awk -v t="$1" '$2 == t && $3 == "tmpfs" {s = $1 " " $4} END {print s}' /proc/mounts)
    if [ -n "$line" ]; then
        # Source and target both given, and only the mount's flags kept: with the target
        # alone BusyBox's mount adds every option /proc/mounts shows, whose uid=/gid= are
        # host ids an isolated VPS cannot map (EINVAL).
        flags=$(echo "${line#* }" | tr , '\n' | grep -E '^(ro|rw|nosuid|nodev|noexec)$' | tr '\n' ,)
        if ! mount -o "remount,${flags}size=${want}k" "${line%% *}" "$1" 2>/dev/null; then
            # Shrinking below what is stored fails: hold it at its current use instead.
            used=$(df -k "$1" | awk 'NR == 2 {print $3}')
            want=$((used + 64))
            mount -o "remount,${flags}size=${want}k" "${line%% *}" "$1" || { status=1; return; }
        fi
    elif [ "$3" = create ]; then
        mkdir -p "$1" && mount -t tmpfs -o nosuid,nodev,mode=1777,size="${want}k" shm "$1" \
            || { status=1; return; }
    else
        return
    fi
    echo "$1 ${want}k"
}
"""
    + _CALLS
    + "\nexit $status\n"
)

SYSTEMD_UNIT = f"""\
[Unit]
Description=Size tmpfs mounts from this VPS's memory limit (containervps)
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={SCRIPT_PATH}

[Install]
WantedBy=sysinit.target
"""
