"""Two independent calls made at the same time, so their round trips overlap instead of adding up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_pool: Any = None


def at_once(first: Callable[[], None], second: Callable[[], None]) -> None:
    """Run ``first`` here and ``second`` on a worker thread; raise the first failure, after both end.

    Both always run to their end, so neither is cut off halfway by the other's failure. The
    worker is made on first use (a cold start that never needs it does not pay for it) and lives
    as long as the container.
    """
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="at-once")
    pending = _pool.submit(second)
    try:
        first()
    finally:
        failure = pending.exception()
    if failure is not None:
        raise failure
