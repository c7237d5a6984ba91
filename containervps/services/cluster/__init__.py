"""LXD clusters: the development cluster on one host, and cluster members as hosts."""
