"""OS images built offline: recipes, root filesystems, import into LXD."""
