"""All settings in one place (environment prefix ``CONTAINERVPS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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

    # Host set-up (`containervps host init`)
    storage_pool: str = "cvps"
    storage_driver: str = "btrfs"  # falls back to "dir" when btrfs cannot be used
    storage_size_gib: int = 40  # size of the loop file backing the pool
    bridge: str = "cvpsbr0"
    bridge_subnet: str = "10.213.0.1/20"  # gateway/prefix; /20 holds 4093 VPSs
    profile: str = "containervps"
    max_containers: int = 1000  # the host is sized for this many isolated idmaps
    subid_start: int = 1_000_000

    # Images
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_suite: str = "bookworm"
    # name -> "<simplestreams server URL> <alias>", for hosts with internet access
    image_remotes: dict[str, str] = Field(
        default_factory=lambda: {
            "ubuntu-24.04": "https://images.lxd.canonical.com ubuntu/24.04",
        }
    )

    # API server
    api_host: str = "127.0.0.1"
    api_port: int = 8080

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the platform database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'containervps.db'}"

    @property
    def image_cache_dir(self) -> Path:
        """Where image builds keep their artifacts between runs."""
        return self.cache_dir / "images"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
