"""``chalice local`` with card numbers masked in everything it prints.

Its HTTP server logs each request line with the full path, so ``GET /payments/<card number>``
would write the number to the console. API Gateway's access log (see ``stacks/api.py``) records
the route template, not the path; locally the output is masked instead.
Run as ``python -m localenv.chalice_local local --port ...`` (the same arguments as ``chalice``).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from chalicelib.cards import redact_pans


class RedactingStream:
    """A text stream that masks card numbers in each write before passing it on."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(redact_pans(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def main() -> None:
    """Run the chalice command line with masked output."""
    from chalice.cli import main as chalice_main

    sys.stdout = RedactingStream(sys.stdout)
    sys.stderr = RedactingStream(sys.stderr)
    sys.argv = ["chalice", *sys.argv[1:]]
    sys.exit(chalice_main())


if __name__ == "__main__":
    main()
