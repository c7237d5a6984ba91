"""The host as a VPS node: set-up, daemons, capability probes (`host check`), QEMU."""
