"""Child process for the crash test: append to a WAL forever, printing each acknowledged index.

Usage: python -m tests.impl.wal.crash_child DIR SEED MODE
MODE `correct` prints an index only after `save` returned (durable). MODE `ack-before-write`
is the seeded bug: it acknowledges at once and writes what it buffered every 50 ms, as a
writer with a periodic flush would; the crash test must catch it.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from impl.wal import Entry, HardState, Wal, WalNotFoundError
from tests.impl.wal.helpers import METADATA, entry_payload

SEGMENT_SIZE_BYTES = 32 * 1024


def main() -> None:
    directory, seed, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    draw = random.Random(seed)
    try:
        wal, contents = Wal.open(directory, segment_size_bytes=SEGMENT_SIZE_BYTES)
        next_index = contents.entries[-1].index + 1 if contents.entries else 1
    except WalNotFoundError:
        wal = Wal.create(directory, METADATA, segment_size_bytes=SEGMENT_SIZE_BYTES)
        next_index = 1
    print("ready", flush=True)
    buffered: list[Entry] = []
    flushed_at = time.monotonic()
    while True:
        batch = [
            Entry(term=1, index=i, data=entry_payload(i, draw.randrange(1, 600)))
            for i in range(next_index, next_index + draw.randrange(1, 20))
        ]
        next_index += len(batch)
        state = HardState(term=1, vote=1, commit=batch[0].index - 1)
        if mode == "correct":
            wal.save(state, batch)
            print(batch[-1].index, flush=True)
        else:
            buffered.extend(batch)
            print(batch[-1].index, flush=True)
            time.sleep(0.001)
            if time.monotonic() - flushed_at >= 0.05:
                wal.save(state, buffered)
                buffered = []
                flushed_at = time.monotonic()


if __name__ == "__main__":
    main()
