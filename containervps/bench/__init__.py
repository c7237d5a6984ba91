"""Benchmarks: the density benchmark (LXD vs VMs vs Docker) and its reports."""
