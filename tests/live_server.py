"""A real uvicorn server of the web app on a free loopback port, in a background thread, for tests: the
configuration ``llm-roofline serve`` runs (``serving.server_config``), with the app or limits a test gives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def live_server(app: Any = None, limits: Any = None, header_timeout_s: float | None = None) -> Iterator[str]:
    """Serve ``create_app(limits)`` (or ``app``) on 127.0.0.1 (a free port) and yield its base URL; stop it
    afterwards. ``header_timeout_s``: a shorter wait for a request's headers than the server's."""
    import uvicorn

    from llm_roofline.faces.web.serving import HeaderTimeoutH11, server_config

    protocol = HeaderTimeoutH11
    if header_timeout_s is not None:
        protocol = type("ShortHeaderTimeout", (HeaderTimeoutH11,), {"header_timeout_s": header_timeout_s})
    config = server_config("127.0.0.1", 0, "warning", limits, protocol)
    if app is not None:
        config.app = app
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
