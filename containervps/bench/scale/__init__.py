"""`containervps bench scale`: servers ramped through the tenant API, beside raw LXD."""
