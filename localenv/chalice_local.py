"""``chalice local`` with card numbers masked in everything it prints.

Its HTTP server logs each request line with the full path, so ``GET /payments/<card number>``
would write the number to the console. API Gateway's access log (see ``stacks/api.py``) records
the route template, not the path; locally the output is masked instead. The functions' metrics
(embedded metric format) reach the local CloudWatch as they reach CloudWatch in AWS
(:mod:`localenv.metric_logs`).
Run as ``python -m localenv.chalice_local local --port ...`` (the same arguments as ``chalice``).
"""

from __future__ import annotations

import sys

from localenv.metric_logs import capture_function_output


def main() -> None:
    """Run the chalice command line with masked output."""
    from chalice.cli import main as chalice_main

    capture_function_output()
    sys.argv = ["chalice", *sys.argv[1:]]
    sys.exit(chalice_main())


if __name__ == "__main__":
    main()
