"""Tenants and what belongs to them: LXD projects, plans, tokens, SSH keys, rate limits,
the audit log."""
