"""Progress of long non-training work (image decoding, balancing): a tqdm bar on stderr.

Only work of at least ``MIN_ITEMS`` items shows a bar, so small jobs (tests, the tiny preset) and their
one-line errors stay quiet. On a terminal the bar redraws twice a second; in a file (a rule's log) it
writes a plain ASCII line every ``LOG_INTERVAL`` seconds at most, and a last one when the work is done.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

MIN_ITEMS = 2000
LOG_INTERVAL = 10.0


def progress_bar(total: int, desc: str, unit: str = "image") -> tqdm:
    """A bar over ``total`` items (advance it with ``update(n)``; use it as a context manager)."""
    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=total < MIN_ITEMS,
        mininterval=0.5 if tty else LOG_INTERVAL,
        ascii=not tty,
        dynamic_ncols=tty,
    )
