"""The local environment: the payment service on an embedded local AWS (moto) on loopback."""

import sys
from pathlib import Path

# The runtime package (chalicelib, app.py) is what the local environment runs.
_RUNTIME = str(Path(__file__).resolve().parents[1] / "runtime")
if _RUNTIME not in sys.path:
    sys.path.insert(0, _RUNTIME)
