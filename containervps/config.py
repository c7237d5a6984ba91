"""All settings in one place (environment prefix ``CONTAINERVPS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform settings; defaults work on a fresh Debian host."""

    model_config = SettingsConfigDict(env_prefix="CONTAINERVPS_", env_file=None)

    data_dir: Path = Path("/var/lib/containervps")
    cache_dir: Path = Path("/var/cache/containervps")  # image builds, reusable across runs
    log_dir: Path = Path("/var/log/containervps")
    database_url: str | None = None  # default: SQLite file in data_dir
    log_format: str = "text"  # "text" or "json"
    log_level: str = "INFO"

    # LXD connection
    lxd_socket: Path | None = None  # None: pylxd's default local unix socket
    lxd_timeout: float = 30.0  # seconds for one HTTP request to LXD
    lxd_operation_timeout: float = 300.0  # seconds to wait for one LXD operation
    lxd_log_dir: Path = Path("/var/log/lxd")  # Debian's LXD: its per-instance log directories

    # Host set-up (`containervps host init`)
    storage_pool: str = "cvps"
    storage_driver: str = "btrfs"  # falls back to "dir" when btrfs cannot be used
    storage_size_gib: int = 40  # size of the loop file backing the pool
    # Where a server's root disk lives. "shared": a volume of the shared pool, its size enforced
    # by btrfs quota groups (`df /` inside shows the pool). "per_server": a pool (loop file and
    # filesystem) of its own, so `df /` shows the plan's size, at a measured cost per server
    # (README, "Disk layouts"; `bench scale --disk-layout`).
    disk_layout: Literal["shared", "per_server"] = "shared"
    # cgroup v1 hierarchies: the platform writes disk bandwidth limits (blkio) itself
    cgroup_root: Path = Path("/sys/fs/cgroup")
    bridge: str = "cvpsbr0"
    bridge_subnet: str = "10.213.0.1/20"  # gateway/prefix; /20 holds 4093 VPSs
    # The bridge's IPv6 gateway/prefix (a /64: servers take SLAAC addresses of their fixed
    # MACs). Empty: a ULA derived from /etc/machine-id, fdXX:XXXX:XXXX:1::1/64.
    bridge_ipv6_subnet: str = ""
    profile: str = "containervps"
    max_containers: int = 1000  # the host is sized for this many isolated idmaps
    servers_per_project: int = 50  # a tenant's servers fill LXD projects of this many each
    subid_start: int = 1_000_000

    # Development cluster (`containervps cluster dev-up`, services/cluster/dev.py): LXD daemons
    # as cluster members on this one host, each in a network namespace of its own with an
    # address on a host bridge of its own (never the VPS bridge), its own LXD_DIR under
    # cluster_dir/<member>, btrfs loop pool and managed bridge. Point the platform at it with
    # CONTAINERVPS_LXD_SOCKET=<cluster_dir>/member1/unix.socket.
    # Not under data_dir: that is 0700, and containers' ids must traverse to their rootfs.
    cluster_dir: Path = Path("/var/lib/containervps-cluster")
    cluster_members: int = 3
    cluster_prefix: str = "cvpscl"  # names its namespaces (<prefix>-memberN) and veths
    cluster_bridge: str = "cvpsclbr0"  # host bridge the members' veths hang on
    cluster_subnet: str = "10.214.0.1/24"  # the host's address on it; member N gets .(10+N)
    cluster_port: int = 8443  # each member's core.https_address port
    cluster_pool_size_gib: int = 5  # each member's btrfs loop file
    cluster_network: str = "cvpsclnet0"  # managed bridge on every member (inside its netns)
    cluster_network_subnet: str = "10.215.0.1/24"  # that bridge's address (no NAT: no uplink)
    cluster_start_timeout: float = 120.0  # seconds for a member daemon to answer / all online
    # LXD's cluster.offline_threshold: seconds without a heartbeat before the cluster reports
    # a member offline (LXD's default; it must be above 10; heartbeats go every half of it).
    cluster_offline_threshold: int = 20
    # Routes to servers on members (services/cluster/routes.py): "<server ipv4>/32 via <its
    # member's address>" in the host's main table, marked with this routing protocol number so
    # a sync only ever touches its own; the lock serialises syncs across processes.
    cluster_route_protocol: int = Field(default=214, ge=1, le=254)
    cluster_route_lock: Path = Path("/run/containervps/cluster-routes.lock")

    # Images
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_suite: str = "bookworm"
    # name -> "<simplestreams server URL> <alias>", for hosts with internet access
    image_remotes: dict[str, str] = Field(
        default_factory=lambda: {
            "ubuntu-24.04": "https://images.lxd.canonical.com ubuntu/24.04",
        }
    )

    # lxcfs (started before LXD) virtualises /proc inside VPSs; options it is started with.
    # --enable-loadavg: each VPS's load average is its own (measured cost: 0.30% of one core
    # at 500 VPSs; README, "The inside view"). On systemd hosts, set them in lxcfs's unit.
    lxcfs_options: list[str] = Field(default_factory=lambda: ["--enable-loadavg"])
    # Seconds between checks in `serve` that lxcfs answers; when it stopped it is started again
    # and the views of running servers re-attached (services/host/lxcfs_watchdog.py). 0: off.
    lxcfs_watch_interval: float = 3.0

    # Density benchmark (`containervps bench density`)
    bench_reports_dir: Path | None = None  # default: <data_dir>/reports
    bench_guest_memory_mib: int = 256  # memory limit of every instance, all kinds
    bench_guest_vcpus: int = 1
    bench_concurrency: int = 4  # instances started at once within a batch
    bench_kvm_probe_timeout: float = 20.0  # nested KVM can hang: give up after this
    bench_boot_timeout: float = 180.0  # one VM boot (TCG is slow) or one container start
    bench_settle_seconds: float = 30.0  # upper bound on waiting for memory to settle

    # API server
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_body_bytes: int = 64 * 1024  # larger request bodies get 413
    api_rate_limit_per_hour: int = 3600  # requests per tenant (or admin token); 0: no limit
    api_max_wait_seconds: float = 60.0  # upper bound of an action long poll
    # Wrong bearer tokens from one client address: past this many within the window, that
    # address gets 429 without its token being checked (0: no throttle).
    api_auth_max_failures: int = 20
    api_auth_failure_window_seconds: float = 300.0
    # Requests one tenant may hold open at once (0: no cap); past a cap: 429 naming it.
    api_max_concurrent_long_polls: int = 4
    api_max_concurrent_execs: int = 4
    api_max_concurrent_consoles: int = 4
    # Threads for exec and console streams, apart from the pool serving every other request.
    api_guest_threads: int = 64

    # Control plane: tenants, capacity, actions, reconciler
    tenant_project_prefix: str = "cvps-t-"  # LXD project of tenant 7: "cvps-t-7"
    cpu_overcommit: float = 4.0  # vCPUs sold per host CPU
    memory_overcommit: float = 1.0  # plan memory sold per byte of MemTotal
    # Disk IOPS sold per IOPS the host disk sustains (measured by `host init`; servers rarely
    # use their whole limit at once, and each limit still caps what one server takes).
    iops_overcommit: float = 20.0
    # Host memory kept free when `capacity` turns measured per-server costs into a count.
    capacity_headroom_mib: int = 2048
    disk_overcommit: float = 2.0  # root-disk GiB sold per GiB of the shared pool (per_server:
    # per GiB of the disk holding the pool files)
    # auto (probe once, cached: LXD's limits.egress, else the platform's IFB shaping)
    # | enforce (LXD's) | platform (IFB shaping) | skip
    nic_egress_limit: str = "auto"
    shutdown_timeout: int = 30  # seconds a graceful shutdown may take before a hard stop
    action_workers: int = 8  # threads running LXD work in the API process
    reconcile_interval: float = 60.0  # seconds between reconciler passes in `serve` (0: off)
    orphan_grace_seconds: float = 3600.0  # tagged orphans are deleted after this long
    # Instance creates are serialised host-wide (LXD 5.0.2 races on isolated idmaps).
    lxd_create_lock: Path = Path("/run/containervps/lxd-create.lock")
    # A restore checks a server it started stays up this long before it drops its way back.
    restore_settle_seconds: float = 1.0
    # Fault injection for tests only: checkpoint name -> "fail" | "pause" (faults.py).
    faults: dict[str, str] = Field(default_factory=dict)
    default_max_servers: int = 5
    default_max_vcpus: int = 8
    default_max_memory_mib: int = 8192
    default_max_disk_gib: int = 100
    default_max_processes: int = 5000
    default_max_snapshots: int = 10  # snapshots a tenant may keep over all its servers

    # Reaching a VPS: a host TCP port per server forwarded to its port 22 by kernel DNAT, one
    # element of the platform's own nftables map per server (services/servers/ssh_forwards.py).
    # Empty: the bridge's gateway address.
    ssh_listen_address: str = ""
    ssh_forward_table: str = "containervps"  # the nftables table (ip family) holding them
    # Tenant firewalls and tenant isolation on the bridge: one nftables table (inet family) the
    # platform owns and rebuilds from the database (services/firewalls/enforce.py).
    net_filter_table: str = "containervps_filter"
    net_filter_lock: Path = Path("/run/containervps/net-filter.lock")
    firewall_max_rules: int = 50  # rules per firewall
    ssh_port_min: int = 42000
    ssh_port_max: int = 42999
    root_password_length: int = 20  # generated when a server is created without SSH keys
    # Exec through the API: bounded in time and output
    exec_timeout_seconds: float = 30.0  # default and upper bound of one exec
    exec_max_output_bytes: int = 1024 * 1024  # stdout + stderr; past it the command is killed
    console_max_seconds: float = 3600.0  # an interactive console is hung up after this long
    usage_sample_interval: float = 60.0  # seconds between usage samples in `serve` (0: off)
    metrics_max_samples: int = 1000  # per metrics answer
    usage_raw_hours: float = 48.0  # raw samples kept this long, then rolled up into hours
    usage_hourly_days: float = 90.0  # hourly roll-ups kept this long, then into months (kept)
    events_retention_days: float = 90.0  # server events kept this long
    # Monthly transfer allowance (checked after each usage sample pass): events at 80% and
    # 100%, then egress held to this rate until the month turns (0: events only, no throttle).
    transfer_throttle_mbit: int = 10
    transfer_webhook_url: str = ""  # also POSTed those events (JSON) when set
    transfer_webhook_timeout: float = 5.0  # seconds; a failed POST is logged, never retried

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the platform database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'containervps.db'}"

    @property
    def ssh_address(self) -> str:
        """The host address forwarded SSH ports listen on (the platform picks it, not tenants)."""
        return self.ssh_listen_address or self.bridge_subnet.split("/")[0]

    @property
    def reports_dir(self) -> Path:
        """Where benchmark reports are written (one directory per run)."""
        return self.bench_reports_dir or self.data_dir / "reports"

    @property
    def image_cache_dir(self) -> Path:
        """Where image builds keep their artifacts between runs."""
        return self.cache_dir / "images"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
