"""The baseline of `bench api`: the same container made with plain pylxd, no control plane."""

from __future__ import annotations

from containervps.bench.api_process import free_port
from containervps.config import Settings
from containervps.db.models import Plan
from containervps.lxd import Lxd, instance_pool
from containervps.lxd.direct import DirectPylxd
from containervps.lxd.locks import instance_create_lock
from containervps.services.host.capabilities import egress_support
from containervps.services.servers.access import ssh_proxy_device
from containervps.services.servers.limits import instance_limits, plan_limits

__all__ = ["DirectBaseline"]


class DirectBaseline:
    """Create and delete containers as a server's would be, straight through pylxd.

    The same host-wide create lock as the control plane (LXD's idmap race), no more, and the
    same storage and devices: a disk pool of its own, and an SSH port forward (an LXD proxy
    device, ~1 s of start).
    """

    def __init__(self, settings: Settings, lxd: Lxd, *, project: str, plan: Plan, image: str):
        self.settings, self.lxd, self.project, self.image = settings, lxd, project, image
        egress = egress_support(settings, lxd)
        self.config, self.devices = instance_limits(
            plan_limits(plan, egress_enforced=egress.enforced),
            pool=settings.storage_pool,
            network=settings.bridge,
        )
        self.direct = DirectPylxd(project=project, socket=settings.lxd_socket)
        shared = lxd.host.get_pool(settings.storage_pool)
        self.driver = shared.driver if shared else settings.storage_driver
        self.disk = {"size": f"{plan.disk_gib}GiB"} if self.driver == "btrfs" else {}

    def create(self, name: str) -> str:
        pool = instance_pool(self.project, name)
        self.lxd.host.create_pool(name=pool, driver=self.driver, config=self.disk)
        self.direct.create_and_start(
            name=name,
            image=self.image,
            config=self.config,
            devices={
                **self.devices,
                "root": {**self.devices["root"], "pool": pool},
                "ssh": ssh_proxy_device(self.settings, free_port()),
            },
            profiles=["default"],
            create_lock=instance_create_lock(self.settings.lxd_create_lock),
        )
        self.lxd.host.delete_image_volumes(pool)
        return name

    def delete(self, name: str) -> None:
        self.direct.delete(name)
        self.lxd.host.delete_pool(instance_pool(self.project, name))
