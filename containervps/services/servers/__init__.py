"""Servers: their states, one module per action (request + run), and the parts actions
share (provision, teardown, disks, access, limits)."""
