"""Tenant firewalls and tenant isolation on the bridge, enforced by the platform's nftables
table (validation, rendering, the sync from the database, the CRUD use cases)."""
