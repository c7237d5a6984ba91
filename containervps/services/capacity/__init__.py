"""Admission: what a tenant and the host hold, and whether a new reservation fits."""
