"""containervps: LXD system containers as VPSs, with a tenant API, an admin CLI and benchmarks."""

__version__ = "0.1.0"
