"""Usage: samples of each server's counters, metrics over a window, monthly transfer."""
