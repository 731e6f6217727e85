"""What every request passes before the web app sees it: the server's limits and its defences.

The server listens on loopback for one user. What may reach it is a web page that user visits (the browser
will send requests to 127.0.0.1 for it, or, through DNS rebinding, to a name of the attacker's that resolves
there) and a hostile file the user uploads. ``RequestGuard`` answers, before any handler runs:

- 431 for headers over ``header_bytes``; 421 when the Host header names neither a loopback name nor the
  server's own address (DNS rebinding);
- 403 for a POST from another origin (an ``Origin`` other than the server's, or a ``Sec-Fetch-Site`` other than
  ``same-origin`` or ``none``), 415 for a POST without its endpoint's content type;
- 413 for a body over its endpoint's cap (counted as it arrives), 408 for one that does not arrive within
  ``body_timeout_s``;
- 503 with ``Retry-After`` for an upload over the cap on uploads in flight (their number and bytes), without
  reading its body;
- a JSON 500 with a request id for any exception a handler lets escape, the connection kept usable.

Refusals made before the body is read close the connection (``Connection: close``): the client may still be
sending it. docs/security.md, "The web server", lists the limits and why each is what it is.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import itertools
import json
import logging
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 16 << 10  # the request line and headers: a browser sends ~1 kB
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a config.json is a few kB; the cap holds for every request but a GGUF header
MAX_GGUF_HEADER_BYTES = 64 << 20  # the start of a GGUF file: its header (vocabularies and merges: ~1-15 MB)
JSON = "application/json"
BINARY = "application/octet-stream"
LOG = logging.getLogger("llm_roofline.web")
TRIM_AFTER_BYTES = 1 << 20  # a body this large is followed by giving the allocator's free memory back


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one server process accepts at once; each default is sized in docs/security.md."""

    header_bytes: int = MAX_HEADER_BYTES
    body_bytes: int = MAX_BODY_BYTES
    gguf_header_bytes: int = MAX_GGUF_HEADER_BYTES
    uploads: int = 8  # uploads being received or parsed at once
    upload_bytes: int = 4 * MAX_GGUF_HEADER_BYTES  # their bytes, reserved when admitted: four full GGUF headers
    worker_threads: int = 1  # parses and sweeps computing at once, off the event loop (each one more takes the
    #                          GIL from the event loop more often: with 2, analyze's slowest answers doubled)
    body_timeout_s: float = 15.0  # a whole body, from the end of the headers: 64 MiB at 4.5 MB/s
    retry_after_s: int = 1


@dataclass(frozen=True, slots=True)
class Body:
    """What a POST endpoint accepts: its content type, its size cap, and whether it is an upload (admitted
    against ``ServerLimits.uploads`` and ``upload_bytes`` before its body is read)."""

    content_type: str
    max_bytes: int
    upload: bool = False


class UploadGate:
    """Uploads in flight, by number and by bytes reserved; one that does not fit is refused, not queued."""

    def __init__(self, uploads: int, upload_bytes: int) -> None:
        self.uploads_left, self.bytes_left = uploads, upload_bytes
        self.lock = threading.Lock()  # a TestClient may call the app from several threads

    def admit(self, nbytes: int) -> bool:
        with self.lock:
            if self.uploads_left < 1 or nbytes > self.bytes_left:
                return False
            self.uploads_left -= 1
            self.bytes_left -= nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self.lock:
            self.uploads_left += 1
            self.bytes_left += nbytes


class Refusal(Exception):
    """A request refused with ``status`` and a one-line message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def is_loopback_name(host: str) -> bool:
    """localhost, a name under .localhost (RFC 6761: browsers resolve those to loopback themselves), or a
    loopback address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name or address of a Host header, without its port: ``[::1]:8000`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


async def raw_body(request: Request) -> bytes | bytearray:
    """The body ``RequestGuard`` read, as it was read (one buffer, not copied again)."""
    chunks = [chunk async for chunk in request.stream() if chunk]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class RequestGuard:
    """The checks, caps and error handling above, as ASGI middleware around the app."""

    def __init__(self, app: ASGIApp, limits: ServerLimits, bodies: Mapping[str, Body],
                 hosts: Collection[str] = (), page_policy: str = "") -> None:
        self.app, self.limits, self.bodies = app, limits, dict(bodies)
        self.hosts = {host_name(host) for host in hosts}
        self.page_policy = page_policy.encode()
        self.gate = UploadGate(limits.uploads, limits.upload_bytes)
        # Request ids: unique in the process, not secret (a counter is cheaper than a random id per request).
        self.id_prefix, self.ids = secrets.token_hex(4), itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{self.id_prefix}{next(self.ids) & 0xFFFFFFFF:08x}"
        extra = [(b"x-request-id", request_id.encode()), (b"x-content-type-options", b"nosniff"),
                 (b"cross-origin-resource-policy", b"same-origin")]
        if not scope["path"].startswith("/api/") and self.page_policy:
            extra.append((b"content-security-policy", self.page_policy))
        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        reserved = 0
        try:
            try:
                headers = Headers(scope=scope)
                self._check_request(scope, headers)
                body = self.bodies.get(scope["path"], Body("", self.limits.body_bytes))
                declared = self._declared_length(headers, body.max_bytes)
                if body.upload:
                    wanted = body.max_bytes if declared is None else declared
                    if not self.gate.admit(wanted):
                        raise Refusal(503, "the server is busy with other uploads: try again in a moment",
                                      {"retry-after": str(self.limits.retry_after_s)})
                    reserved = wanted
                data = await self._read_body(receive, body.max_bytes, declared)
            except Refusal as refusal:
                await _send_json(send_marked, refusal.status, {"detail": refusal.message}, close=True,
                                 headers=refusal.headers)
                return
            if data is None:
                return  # the client went away
            try:
                await self.app(scope, _replay(data, receive), send_marked)
            except Exception:
                LOG.exception("request %s (%s %s) failed", request_id, scope["method"], scope["path"])
                if not started:  # else the response is half sent: the server closes the connection
                    message = f"internal error (request {request_id}): the server's log has the details"
                    await _send_json(send_marked, 500, {"detail": message, "error": "internal error",
                                                        "request_id": request_id})
            if len(data) >= TRIM_AFTER_BYTES:
                del data
                await anyio.to_thread.run_sync(release_freed_memory)
        finally:
            if reserved:
                self.gate.release(reserved)

    def _check_request(self, scope: Scope, headers: Headers) -> None:
        # h11 caps headers that arrive in pieces; ones that arrive in a single read are only counted here.
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > self.limits.header_bytes:
            raise Refusal(431, f"request headers too large: the limit is {self.limits.header_bytes} bytes")
        host_header = headers.get("host", "")
        host = host_name(host_header)
        server = scope.get("server")
        own = {host_name(str(server[0]))} if server else set()
        if not (is_loopback_name(host) or host in own or host in self.hosts):
            raise Refusal(421, f"this server answers to localhost and its own address, not to Host "
                               f"{host_header[:100]!r}")
        if scope["method"] != "POST":
            return
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        if (origin is not None and origin.lower() != f"{scope['scheme']}://{host_header.lower()}") or \
                (site is not None and site not in ("same-origin", "none")):
            raise Refusal(403, "cross-origin requests are refused: use the page this server serves")
        expected = self.bodies.get(scope["path"])
        if expected is not None and media_type(headers.get("content-type", "")) != expected.content_type:
            raise Refusal(415, f"{scope['path']} takes Content-Type: {expected.content_type}")

    @staticmethod
    def _declared_length(headers: Headers, limit: int) -> int | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not declared.isdigit():
            raise Refusal(400, "Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise Refusal(413, f"request body too large: the limit is {limit} bytes")
        return int(declared)

    async def _read_body(self, receive: Receive, limit: int, declared: int | None) -> bytearray | None:
        """The whole body, at most ``limit`` bytes, within ``body_timeout_s``; None if the client left.

        The buffer grows as the body arrives (a slow client holds only what it sent), in place: a large one
        is its own memory mapping, which the allocator extends and, once freed, returns to the system."""
        data = bytearray()
        with anyio.move_on_after(self.limits.body_timeout_s) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                data += message.get("body", b"")
                if len(data) > limit:
                    raise Refusal(413, f"request body too large: the limit is {limit} bytes")
                if not message.get("more_body", False):
                    return data
        assert timer.cancelled_caught
        raise Refusal(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s"
                           + (f" ({len(data)} of {declared} bytes)" if declared is not None else ""))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; musl has none
    return trim


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the operating system (glibc's ``malloc_trim``; elsewhere nothing).

    An upload leaves tens of MB free but resident in the heaps of the threads that received and parsed it
    (64 KiB chunks, decoded strings): glibc keeps up to 64 MiB free per heap after large blocks were freed.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _replay(data: bytearray, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then passes through (disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": data, "more_body": False}

    return replay


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, content: object, close: bool = False,
                     headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps(content).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
