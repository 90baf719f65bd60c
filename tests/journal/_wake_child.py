"""A process that opens a journal, listens for work and waits (for the wake-up tests).

    python -m tests.journal._wake_child BASE_DIR

Prints ``listening`` once its wake-up socket is bound, then ``woken`` each
time another process's commit wakes it. Polling is out of the picture: its
waits last an hour.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from omniq_trio.store import Change, JournalStore


async def main(base_dir: Path) -> None:
    async with JournalStore(base_dir) as store:
        seen = store.change_version(Change.WORK)
        # the first wait binds the socket and returns at once (it may have missed news)
        await store.wait_for_change(Change.WORK, seen, trio.current_time() + 3600)
        print("listening", flush=True)
        while True:
            seen = store.change_version(Change.WORK)
            await store.wait_for_change(Change.WORK, seen, trio.current_time() + 3600)
            print("woken", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
