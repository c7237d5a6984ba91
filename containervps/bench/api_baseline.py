"""The baseline of `bench api` and `bench scale`: the same container made with plain pylxd, no
control plane."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.models import Plan
from containervps.lxd import Lxd, instance_pool
from containervps.lxd.direct import DirectPylxd
from containervps.lxd.locks import instance_create_lock
from containervps.services.host.capabilities import egress_support
from containervps.services.servers.limits import instance_limits, plan_limits

__all__ = ["DirectBaseline"]


class DirectBaseline:
    """Create and delete containers as a server's would be, straight through pylxd.

    The same host-wide create lock as the control plane (LXD's idmap race), no more, and the
    same limits and disk layout (`disk_layout`: the shared pool, or a pool per container). No
    SSH forward: a server's is one element of the platform's nftables map, not an LXD object.
    """

    def __init__(self, settings: Settings, lxd: Lxd, *, project: str, plan: Plan, image: str):
        self.settings, self.lxd, self.project, self.image = settings, lxd, project, image
        egress = egress_support(settings, lxd)
        self.config, self.devices = instance_limits(
            # The platform's own shaping (IFB) is not LXD's: only LXD's limit goes on the NIC.
            plan_limits(plan, egress_enforced=egress.enforced, egress_mechanism=egress.mechanism),
            pool=settings.storage_pool,
            network=settings.bridge,
        )
        self.config["security.idmap.isolated"] = "true"  # as servers' profiles set it
        self.direct = DirectPylxd(project=project, socket=settings.lxd_socket)
        self.own_pools = settings.disk_layout == "per_server"
        shared = lxd.host.get_pool(settings.storage_pool)
        self.driver = shared.driver if shared else settings.storage_driver
        self.disk = {"size": f"{plan.disk_gib}GiB"} if self.driver == "btrfs" else {}

    def create(self, name: str) -> str:
        pool = self.settings.storage_pool
        if self.own_pools:
            pool = instance_pool(self.project, name)
            self.lxd.host.create_pool(name=pool, driver=self.driver, config=self.disk)
        self.direct.create_and_start(
            name=name,
            image=self.image,
            config=self.config,
            devices={**self.devices, "root": {**self.devices["root"], "pool": pool}},
            profiles=["default"],
            create_lock=instance_create_lock(self.settings.lxd_create_lock),
        )
        if self.own_pools:
            self.lxd.host.delete_image_volumes(pool)
        return name

    def delete(self, name: str) -> None:
        self.direct.delete(name)
        if self.own_pools:
            self.lxd.host.delete_pool(instance_pool(self.project, name))
