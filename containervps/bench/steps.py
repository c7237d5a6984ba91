"""Parsing ``--steps`` values: ``10,25,50`` for every kind or ``vm=1,2,4`` for one kind."""

from __future__ import annotations

from containervps.bench.model import KINDS
from containervps.errors import InvalidInput


def parse_steps(values: list[str]) -> dict[str, list[int]]:
    """``["10,25,50", "vm=2,4"]`` -> ``{"*": [10, 25, 50], "vm": [2, 4]}``."""
    steps: dict[str, list[int]] = {}
    for value in values:
        kind, sep, counts = value.partition("=")
        if not sep:
            kind, counts = "*", value
        if kind != "*" and kind not in KINDS:
            raise InvalidInput(
                f"unknown kind {kind!r} in --steps {value!r}", resolution=f"use {', '.join(KINDS)}"
            )
        try:
            numbers = sorted({int(c) for c in counts.split(",") if c.strip()})
        except ValueError as exc:
            raise InvalidInput(
                f"--steps {value!r} is not a list of counts", resolution="e.g. 10,25,50 or vm=1,2"
            ) from exc
        if not numbers or numbers[0] < 1:
            raise InvalidInput(f"--steps {value!r} needs counts of at least 1")
        steps[kind] = numbers
    return steps
