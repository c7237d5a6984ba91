"""The guest-side commands every kind runs: readiness check, CPU job, IOPS job, active load.

The same shell text runs in LXD containers, Docker containers, VM guests and on the host, so
the comparison is between runtimes, not between programs.
"""

from __future__ import annotations

# "$1" iterations of shell arithmetic: pure CPU, no I/O, no allocation.
CPU_JOB = 'i=0; while [ "$i" -lt "$1" ]; do i=$((i+1)); done'

# "$1" 4 KiB writes with O_DIRECT to the file "$2", then remove it.
IOPS_JOB = (
    'dd if=/dev/zero of="$2" bs=4096 count="$1" oflag=direct 2>/dev/null; rc=$?; '
    'rm -f "$2"; exit "$rc"'
)

# The "active" profile: hold 16 MiB and spin a little every 5 s; bounded to one hour.
ACTIVE_LOAD = (
    'x=$(head -c 16777216 /dev/zero | tr "\\000" a); n=0; '
    'while [ "$n" -lt 720 ]; do i=0; while [ "$i" -lt 20000 ]; do i=$((i+1)); done; '
    "sleep 5; n=$((n+1)); done"
)

# sshd listening is what "ready" means for the full-OS workload.
SSH_LISTENING = "ss -Hltn 'sport = :22' | grep -q ."


def ready_command(workload: str) -> list[str]:
    """The command that succeeds once an instance of ``workload`` is ready."""
    if workload == "debian-12":
        return ["sh", "-c", SSH_LISTENING]
    return ["true"]


def cpu_command(loops: int) -> list[str]:
    return ["sh", "-c", CPU_JOB, "sh", str(loops)]


def iops_command(writes: int, path: str) -> list[str]:
    return ["sh", "-c", IOPS_JOB, "sh", str(writes), path]


def active_command() -> list[str]:
    """Start the active load in the background and return at once."""
    return ["sh", "-c", f"({ACTIVE_LOAD}) </dev/null >/dev/null 2>&1 &"]


# The agent inside VM guests: a readiness marker on the console (ttyS0) and a command loop on
# the second serial port (ttyS1), which only the host-side QEMU unix socket can reach.
READY_MARKER = "CVPS-BENCH-READY"

VM_AGENT = f"""#!/bin/sh
# containervps density benchmark agent (VM guests only)
if [ "$1" = ssh ]; then
  n=0
  while [ "$n" -lt 600 ] && ! {SSH_LISTENING}; do sleep 0.2; n=$((n+1)); done
fi
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo {READY_MARKER} > /dev/ttyS0
exec 3<>/dev/ttyS1
while read -r cmd arg <&3; do
  case "$cmd" in
    ping) echo pong >&3 ;;
    cpu) sh -c '{CPU_JOB}' sh "$arg"; echo done >&3 ;;
    active) ( {ACTIVE_LOAD} ) </dev/null >/dev/null 2>&1 & echo ok >&3 ;;
    *) echo unknown >&3 ;;
  esac
done
"""
