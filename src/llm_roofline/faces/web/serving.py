"""How ``llm-roofline serve`` runs the app: uvicorn with the connection-level limits (docs/security.md).

``RequestGuard`` bounds what happens once a request's headers are in; these bound the rest: how long a
connection may take to send its headers, how large they may be, how many connections and requests are
served at once, how long an idle keep-alive connection is kept, and how long a shutdown waits.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import h11
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

from llm_roofline.faces.web.app import create_app
from llm_roofline.faces.web.guard import ServerLimits

HEADER_TIMEOUT_S = 10.0  # from a connection's start, or the end of its last response, to its next request's headers
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
MAX_CONCURRENCY = 128  # connections (or requests in progress) at once; past it, new requests get 503
SHUTDOWN_S = 5  # on Ctrl-C or SIGTERM, requests still running after this are cancelled
# The longest the event loop waits for the GIL while a worker thread parses (Python's default: 5 ms). The
# loop gives the GIL up at every socket call, and under a storm of requests makes thousands a second.
GIL_SWITCH_S = 0.0005


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete within
    ``header_timeout_s`` (uvicorn times idle keep-alive connections, not a request sent a byte at a time)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _headers_overdue(self) -> None:
        # IDLE: the client has not finished a request's headers since the timer started.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_config(host: str, port: int, log_level: str = "info", limits: ServerLimits | None = None,
                  protocol: type[H11Protocol] = HeaderTimeoutH11) -> Config:
    """The uvicorn configuration of ``serve``: the app, answering to ``host`` as well as to localhost."""
    limits = limits or ServerLimits()
    return Config(
        create_app(limits, hosts=(host,)), host=host, port=port, log_level=log_level,
        http=protocol,
        h11_max_incomplete_event_size=limits.header_bytes,  # headers arriving in pieces; the guard counts the rest
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=MAX_CONCURRENCY,
        timeout_graceful_shutdown=SHUTDOWN_S,
        proxy_headers=False,  # nothing stands in front: X-Forwarded-For from a page must not change the client
        server_header=False,
        lifespan="off",
    )



def serve(host: str, port: int, log_level: str) -> None:
    """Run the server until Ctrl-C or SIGTERM (``llm-roofline serve``).

    Two process-wide settings keep the event loop answering while a worker thread parses: the GIL is
    handed over every ``GIL_SWITCH_S``, and what lives as long as the process (modules, the app, the GGUF
    reader's ``gguf`` package) is frozen out of the garbage collector's full passes, each of which would
    otherwise walk it all, holding the GIL, for ~0.1 s whenever a parse allocates enough to trigger one."""
    config = server_config(host, port, log_level)
    import gguf  # noqa: F401  (what the first GGUF upload imports)

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_S)
    Server(config).run()
