"""The cyclic garbage collector during a cold start.

What a cold start builds (modules, classes, functions, the botocore session) lives as long as
the container. The collector would scan it again on every collection and never find garbage,
so it is paused while it is built and then told to leave it alone for good (``gc.freeze``),
in the cold start and in every invocation after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_long_lived() -> None:
    """Move everything built so far out of the collector's sight and let it run again."""
    gc.freeze()
    gc.enable()


@contextmanager
def building_long_lived() -> Iterator[None]:
    """Pause the collector while the block builds long-lived objects, then freeze them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
