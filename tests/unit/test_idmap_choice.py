"""Which idmap a restored instance gets back (lxd/idmaps.py): its own unless it is unusable."""

from __future__ import annotations

import json

from containervps.lxd.idmaps import MAP_SIZE, free_base, idmap_json, wanted_base

START, COUNT = 100_000, 20 * MAP_SIZE
BOUNDS = (START, COUNT)
FIRST = START + MAP_SIZE  # LXD keeps the first map of its range for non-isolated containers


def test_own_base_is_kept_when_in_range_and_unshared() -> None:
    others = [FIRST, FIRST + 2 * MAP_SIZE]
    assert wanted_base(FIRST + MAP_SIZE, others, BOUNDS) == FIRST + MAP_SIZE


def test_shared_or_out_of_range_base_is_replaced_by_the_lowest_free_one() -> None:
    others = [FIRST, FIRST + MAP_SIZE, FIRST + 3 * MAP_SIZE]
    # Shared with another instance (what a restore of an old snapshot gave on LXD 5.0.2).
    assert wanted_base(FIRST + MAP_SIZE, others, BOUNDS) == FIRST + 2 * MAP_SIZE
    # The base LXD hands out while a create is half done: below root's range.
    assert wanted_base(MAP_SIZE, others, BOUNDS) == FIRST + 2 * MAP_SIZE
    # LXD's reserved first map and the range's end do not count as free.
    assert wanted_base(START, [], BOUNDS) == FIRST
    assert wanted_base(START + COUNT - MAP_SIZE // 2, [], BOUNDS) == FIRST
    assert wanted_base(None, [FIRST], BOUNDS) == FIRST + MAP_SIZE


def test_free_base_skips_overlaps_and_reports_a_full_range() -> None:
    # A base not on a map boundary still blocks every map overlapping it.
    assert free_base([FIRST + MAP_SIZE // 2], BOUNDS) == FIRST + MAP_SIZE + MAP_SIZE // 2
    assert free_base([0, 0], BOUNDS) == FIRST  # non-isolated instances have base 0
    every = [FIRST + i * MAP_SIZE for i in range(COUNT // MAP_SIZE - 1)]
    assert free_base(every, BOUNDS) is None
    assert free_base(every[:-1], BOUNDS) == every[-1]


def test_idmap_json_is_the_map_lxd_writes() -> None:
    entries = json.loads(idmap_json(FIRST))
    assert [(e["Isuid"], e["Isgid"]) for e in entries] == [(True, False), (False, True)]
    assert {(e["Hostid"], e["Nsid"], e["Maprange"]) for e in entries} == {(FIRST, 0, MAP_SIZE)}
    # Byte for byte as LXD stores it: an unchanged map is then recognised as unchanged.
    assert idmap_json(FIRST).startswith('[{"Isuid":true,"Isgid":false,"Hostid":165536,')
