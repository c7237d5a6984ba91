"""`containervps serve` as ApiProcess runs it in tests: the real CLI, with servers skipping
every address LXD holds, as in the test process (conftest.py, held_addresses.py)."""

from __future__ import annotations

from containervps.cli import main
from containervps.services.servers import addresses
from tests.integration.held_addresses import skipping_held

if __name__ == "__main__":
    addresses.held_by_live = skipping_held(addresses.held_by_live)  # type: ignore[assignment]
    main()
