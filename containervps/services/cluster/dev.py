"""The development cluster: N LXD 5.0 daemons as cluster members on this one host.

``up`` runs, in this order (names from the settings' defaults):

1. ``ip link add cvpsclbr0 type bridge`` with 10.214.0.1/24 (``cluster_bridge``,
   ``cluster_subnet``), kept out of iptables (netns.py);
2. per member N: ``ip netns add cvpscl-memberN``, a veth ``cvpsclvN`` on the bridge whose peer
   is the namespace's ``eth0`` with 10.214.0.(10+N)/24, a default route via 10.214.0.1,
   ``net.ipv4.ip_forward=1`` and the namespace's fence (nftables ``cvps_dev``: new connections
   out of ``eth0`` only to the cluster subnet), so that servers routed there answer SSH;
3. per member: ``unshare --mount nsenter --net=/run/netns/cvpscl-memberN`` + a fresh sysfs,
   then ``LXD_DIR=<cluster_dir>/memberN lxd --group root --logfile <LXD_DIR>/lxd.log``
   (member_daemon.py), its pid recorded in ``<cluster_dir>/memberN.pid``; ``lxd waitready``;
4. ``lxd init --preseed`` on member 1: ``core.https_address`` 10.214.0.11:8443, clustering on
   (preseed.py); then per member 2..N a join token from member 1 (``POST /1.0/cluster/members``)
   and ``lxd init --preseed`` with it on that member;
5. the storage pool ``storage_pool`` (btrfs, a ``cluster_pool_size_gib`` loop file in each
   member's LXD_DIR) and the managed bridge ``cluster_network`` (``cluster_network_subnet``,
   no NAT) the cluster way: pending on each member (``?target=memberN``), then globally; the
   ``default`` profile gets a root disk on the pool and ``eth0`` on that bridge;
6. ``scheduler.instance=manual`` on every member (instances go where the platform says),
   ``cluster.offline_threshold`` from the settings (how soon a silent member is offline);
7. the platform's busybox image (cached build) imported under the alias ``busybox``;
8. wait until every member is ``Online``.

Any failure tears down what was made. ``down`` stops every instance through member 1 while the
cluster has its quorum, then every member (``lxd shutdown`` with its LXD_DIR, all at once; then
SIGKILL of the recorded pid and of whatever is left in its namespace: dnsmasq, forkdns),
detaches loop devices still backed by its files, deletes the namespaces, veths, bridge and
``cluster_dir``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from containervps.config import Settings
from containervps.errors import Conflict, ContainerVpsError, HostSetupError, LxdError, NotFound
from containervps.lxd import Lxd, connect_socket
from containervps.services.cluster import member_daemon, netns, preseed
from containervps.services.cluster.layout import MAX_MEMBERS, MemberLayout, cluster_layout
from containervps.services.images.service import ImageService
from containervps.shell import probe

__all__ = ["ClusterStatus", "DevCluster", "DevDown", "DevUp", "MemberStatus"]

Progress = Callable[[str], None]
DEV_IMAGE = "busybox"


@dataclass(frozen=True)
class MemberStatus:
    name: str
    address: str
    netns: bool
    pid: int | None  # the recorded daemon, when it runs
    rss_mib: float
    lxd_status: str  # as the cluster reports it ("Online", ...); "" when unknown


@dataclass(frozen=True)
class ClusterStatus:
    bridge: str
    bridge_exists: bool
    socket: str  # member 1's unix socket: CONTAINERVPS_LXD_SOCKET for the platform
    members: list[MemberStatus]

    @property
    def running(self) -> bool:
        """Every member's daemon runs and the cluster reports it online."""
        return bool(self.members) and all(
            m.pid is not None and m.lxd_status == "Online" for m in self.members
        )

    @property
    def traces(self) -> bool:
        """Anything of a cluster exists (bridge, namespace, daemon)."""
        return self.bridge_exists or any(m.netns or m.pid for m in self.members)


@dataclass(frozen=True)
class DevUp:
    created: bool  # False: it was running already
    seconds: float
    status: ClusterStatus


@dataclass(frozen=True)
class DevDown:
    seconds: float
    removed: list[str] = field(default_factory=list)


class DevCluster:
    """Bring the development cluster up, report on it, tear it down."""

    def __init__(
        self, settings: Settings, *, members: int | None = None, progress: Progress | None = None
    ) -> None:
        self.settings = settings
        self.layout = cluster_layout(settings, members=members)
        self.say = progress or (lambda _: None)

    @property
    def timeout(self) -> float:
        return self.settings.cluster_start_timeout

    def client(self, member: MemberLayout | None = None) -> Lxd:
        """The cluster's API through a member's unix socket (default: member 1)."""
        return connect_socket(self.settings, (member or self.layout.bootstrap).socket)

    # status
    def status(self) -> ClusterStatus:
        """What runs now: bridge, namespaces, daemons (RSS) and the cluster's own view."""
        layout = self.layout
        lxd_view: dict[str, str] = {}
        if member_daemon.alive_pid(layout.bootstrap) is not None:
            try:
                lxd_view = {m.name: m.status for m in self.client().cluster.members()}
            except ContainerVpsError:
                lxd_view = {}  # not bootstrapped yet, or not answering
        members = []
        for m in layout.members:
            pid = member_daemon.alive_pid(m)
            members.append(
                MemberStatus(
                    name=m.name,
                    address=m.address,
                    netns=netns.netns_exists(m.netns),
                    pid=pid,
                    rss_mib=member_daemon.rss_mib(pid) if pid else 0.0,
                    lxd_status=lxd_view.get(m.name, ""),
                )
            )
        return ClusterStatus(
            bridge=layout.bridge,
            bridge_exists=netns.bridge_exists(layout),
            socket=str(layout.bootstrap.socket),
            members=members,
        )

    # up
    def up(self) -> DevUp:
        """Create the cluster unless it runs already (then only report it)."""
        started = time.monotonic()
        current = self.status()
        if current.running:
            return DevUp(created=False, seconds=time.monotonic() - started, status=current)
        if current.traces or self._any_traces():
            raise Conflict(
                "a development cluster is partly there (bridge, namespaces or daemons)",
                details={"bridge": current.bridge_exists},
                resolution="run `containervps cluster dev-down` first",
            )
        try:
            self._create()
        except BaseException:
            self.say("failed: tearing down what was made")
            try:
                self.down()
            except ContainerVpsError as exc:  # the first failure is the one to report
                self.say(f"teardown after the failure: {exc.one_line()}")
            raise
        return DevUp(created=True, seconds=time.monotonic() - started, status=self.status())

    def _any_traces(self) -> bool:
        """Traces of a cluster with more members than this one asks for."""
        wider = cluster_layout(self.settings, members=MAX_MEMBERS)
        return any(
            netns.netns_exists(m.netns) or netns.link_exists(m.veth) for m in wider.members
        ) or (self.layout.directory.exists() and any(self.layout.directory.iterdir()))

    def _create(self) -> None:
        layout = self.layout
        self.layout.directory.mkdir(parents=True, exist_ok=True)
        self.layout.directory.chmod(0o711)  # containers' ids traverse it to their rootfs
        self.say(f"bridge {layout.bridge} {layout.gateway}/{layout.prefix_len}")
        netns.add_bridge(layout)
        for m in layout.members:
            self.say(f"{m.name}: namespace {m.netns}, {m.address}, daemon")
            netns.add_member_netns(layout, m)
            member_daemon.start(m, timeout=self.timeout)
        boot = layout.bootstrap
        self.say(f"{boot.name}: bootstrap the cluster on {boot.https_address}")
        member_daemon.init(boot, preseed.render(preseed.bootstrap_preseed(boot)), timeout=120)
        lxd = self.client()
        certificate = lxd.cluster.certificate()
        for m in layout.members[1:]:
            self.say(f"{m.name}: join")
            document = preseed.join_preseed(
                m, bootstrap=boot, certificate=certificate, token=lxd.cluster.join_token(m.name)
            )
            member_daemon.init(m, preseed.render(document), timeout=180)
        self._objects(lxd)
        self.say(f"image {DEV_IMAGE}")
        ImageService(self.settings, lxd).import_cached(DEV_IMAGE)
        self._wait_online(lxd)

    def _objects(self, lxd: Lxd) -> None:
        """Pool, bridge and default profile the cluster way; manual scheduling per member."""
        names = [m.name for m in self.layout.members]
        pool, network = self.settings.storage_pool, self.settings.cluster_network
        self.say(f"storage pool {pool} (btrfs, {self.settings.cluster_pool_size_gib} GiB each)")
        lxd.cluster.create_pool(
            name=pool,
            driver="btrfs",
            member_config={n: {"size": f"{self.settings.cluster_pool_size_gib}GiB"} for n in names},
        )
        self.say(f"network {network} ({self.settings.cluster_network_subnet}) on every member")
        lxd.cluster.create_network(
            name=network,
            members=names,
            config={
                "ipv4.address": self.settings.cluster_network_subnet,
                "ipv4.nat": "false",
                "ipv6.address": "none",
            },
            description="containervps development cluster: containers of each member",
        )
        lxd.host.put_profile(
            name="default",
            config={},
            devices={
                "root": {"type": "disk", "path": "/", "pool": pool},
                "eth0": {"type": "nic", "name": "eth0", "network": network},
            },
            description="containervps development cluster",
        )
        for name in names:
            lxd.cluster.set_member_config(name, {"scheduler.instance": "manual"})
        # Set once the cluster is formed (LXD 5.0.2's daemon dropped the connection when a
        # bootstrap preseed carried it).
        threshold = self.settings.cluster_offline_threshold
        self.say(f"cluster.offline_threshold {threshold}s")
        lxd.cluster.set_config({"cluster.offline_threshold": str(threshold)})

    def _wait_online(self, lxd: Lxd) -> None:
        want = {m.name for m in self.layout.members}
        deadline = time.monotonic() + self.timeout
        while True:
            members = {m.name: m.status for m in lxd.cluster.members()}
            if want <= {n for n, s in members.items() if s == "Online"}:
                return
            if time.monotonic() >= deadline:
                raise LxdError(
                    f"cluster members not online after {self.timeout:.0f}s: {members}",
                    resolution=f"see {self.layout.directory}/member*/lxd.log",
                )
            time.sleep(1)

    # one member
    def member(self, name: str) -> MemberLayout:
        """A member of this cluster's layout by name (NotFound naming the members)."""
        for m in self.layout.members:
            if m.name == name:
                return m
        known = [m.name for m in self.layout.members]
        raise NotFound(f"no development cluster member {name!r}", details={"members": known})

    def stop_member(self, name: str) -> bool:
        """Stop one member's LXD daemon, leaving its instances running (the cluster reports
        it offline after ``cluster_offline_threshold`` seconds); True if it was running."""
        return member_daemon.halt(self.member(name), timeout=30)

    def start_member(self, name: str) -> int:
        """Start one member's daemon again (it rejoins; its running instances are found);
        its pid."""
        return member_daemon.start(self.member(name), timeout=self.timeout)

    # down
    def down(self) -> DevDown:
        """Stop every member and remove everything ``up`` made (also after a partial up)."""
        started = time.monotonic()
        wider = cluster_layout(self.settings, members=MAX_MEMBERS)
        members = [
            m
            for m in wider.members
            if netns.netns_exists(m.netns) or m.pid_file.exists() or netns.link_exists(m.veth)
        ]
        removed: list[str] = []
        if members:
            removed.extend(self._stop_instances())
            self.say(f"stopping {', '.join(m.name for m in members)}")
            with ThreadPoolExecutor(max_workers=len(members)) as pool:
                for done in pool.map(lambda m: member_daemon.stop(m, timeout=60), members):
                    removed.extend(done)
        for m in wider.members:
            removed.extend(_detach_loops(m.lxd_dir))
            removed.extend(netns.delete_member_netns(m))
        removed.extend(netns.delete_bridge(wider))
        removed.extend(self._remove_directory())
        return DevDown(seconds=time.monotonic() - started, removed=removed)

    def _stop_instances(self) -> list[str]:
        """Stop every running instance while the cluster still has its quorum: a member
        stopping its instances during ``lxd shutdown`` needs the database, which members
        shutting down beside it take away (measured: 60 s and a failed shutdown)."""
        if member_daemon.alive_pid(self.layout.bootstrap) is None:
            return []
        stopped = []
        try:
            lxd = self.client()
            for inst in lxd.instances.everywhere():
                if inst.status != "Stopped":
                    lxd.instances.set_state(
                        name=inst.name, project=inst.project, action="stop", force=True
                    )
                    stopped.append(f"instance {inst.project}/{inst.name} stopped")
        except ContainerVpsError as exc:  # lxd shutdown stops what is left
            self.say(f"stopping instances: {exc.one_line()}")
        return stopped

    def _remove_directory(self) -> list[str]:
        directory = self.layout.directory
        if not directory.exists():
            return []
        mounts = probe(["findmnt", "-rn", "-o", "TARGET"], timeout=10).stdout.split()
        if any(Path(t).is_relative_to(directory) for t in mounts):
            raise HostSetupError(
                f"{directory} still has mounts on this host; not removing it",
                resolution="see `findmnt -R` and retry dev-down",
            )
        shutil.rmtree(directory)
        return [f"directory {directory}"]


def _detach_loops(lxd_dir: Path) -> list[str]:
    """Loop devices still backed by a member's pool files (normally freed with its mounts)."""
    disks = lxd_dir / "disks"
    if not disks.is_dir():
        return []
    removed = []
    for image in disks.glob("*.img"):
        # "/dev/loop7: []: (/path/to/file)" per device backed by the file
        found = probe(["losetup", "-j", str(image)], timeout=10).stdout.splitlines()
        for device in (line.split(":", 1)[0] for line in found if line.strip()):
            if probe(["losetup", "-d", device], timeout=10).ok:  # it may have just autocleared
                removed.append(f"loop {device} ({image.name})")
    return removed
