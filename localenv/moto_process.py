"""moto's server in a process of its own, with :mod:`localenv.moto_fixes` installed.

The local AWS gets a core to itself instead of sharing one interpreter lock with replication.
Run as ``python -m localenv.moto_process``; it prints ``listening on http://HOST:PORT`` once
it accepts requests and serves until SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from moto.server import ThreadedMotoServer

from localenv import moto_fixes


def main() -> None:
    """Serve a local AWS on a free loopback port until stopped."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_fixes.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"listening on http://{host}:{port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
