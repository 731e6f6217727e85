"""The web server against hostile pages and hostile files: Host, origin and content-type checks, body caps and
timeouts, the cap on uploads in flight, JSON 500s that leave the connection usable, GGUF caps over HTTP.

Requests that must reach a real socket (timeouts, keep-alive, refusals before the body) go to a real uvicorn
server (tests/live_server.py); the others go through Starlette's TestClient. Nothing here measures time:
latency under attack is bench/web_hostile.py's (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import require_module

require_module("fastapi")
require_module("httpx")
require_module("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from live_server import live_server  # noqa: E402
from llm_roofline.faces.web.app import GGUF_PATH, PARSE_PATH, create_app  # noqa: E402
from llm_roofline.faces.web.guard import ServerLimits, UploadGate, host_name, is_loopback_name  # noqa: E402
from llm_roofline.inputs.model_files import catalogue_config  # noqa: E402

CONFIG = json.dumps(catalogue_config("gpt2")).encode()
JSON_TYPE = {"Content-Type": "application/json"}
BINARY_TYPE = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(hosts=("roofline.lan",))
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as test_client:
        yield test_client


# --- Host: DNS rebinding --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "127.8.9.10", "[::1]:8000",
                                  "app.localhost:1234", "LOCALHOST", "roofline.lan:8000"])
def test_loopback_names_the_own_address_and_the_bound_name_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/catalogue", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil",
                                  "10.0.0.1", "[::2]", ""])
def test_other_hosts_get_421(client: TestClient, host: str) -> None:
    for method, path in (("GET", "/"), ("GET", "/api/catalogue"), ("POST", "/api/analyze")):
        response = client.request(method, path, headers={"Host": host} | JSON_TYPE, content=b"{}")
        assert response.status_code == 421, (method, path, host)
        assert "answers to localhost" in response.json()["detail"]


def test_host_names() -> None:
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM:80") == "example.com"
    assert host_name("::1") == "::1" and host_name("localhost") == "localhost"
    assert is_loopback_name("127.0.0.2") and is_loopback_name("::1") and is_loopback_name("a.b.localhost")
    assert not is_loopback_name("localhost.example") and not is_loopback_name("128.0.0.1")


# --- origin and content type ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:8001"},  # another port: another origin
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
@pytest.mark.parametrize(("path", "content_type", "body"), [
    ("/api/analyze", JSON_TYPE, b"{}"), (f"{PARSE_PATH}?name=c.json", JSON_TYPE, CONFIG),
    (f"{GGUF_PATH}?size=100", BINARY_TYPE, b"GGUF"),
])
def test_cross_origin_posts_get_403(client: TestClient, headers: dict[str, str], path: str,
                                    content_type: dict[str, str], body: bytes) -> None:
    response = client.post(path, content=body, headers=headers | content_type)
    assert response.status_code == 403 and "cross-origin" in response.json()["detail"]


def test_same_origin_posts_are_served(client: TestClient) -> None:
    page = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/analyze", content=b"{}", headers=page | JSON_TYPE).status_code == 200
    assert client.post(PARSE_PATH, content=CONFIG, headers=page | JSON_TYPE).status_code == 200
    assert client.post("/api/analyze", content=b"{}", headers={"Sec-Fetch-Site": "none"} | JSON_TYPE).status_code == 200


@pytest.mark.parametrize(("path", "content_type"), [
    (PARSE_PATH, "text/plain"), (PARSE_PATH, "application/x-www-form-urlencoded"), (PARSE_PATH, None),
    (f"{GGUF_PATH}?size=100", "application/json"), (f"{GGUF_PATH}?size=100", "multipart/form-data; boundary=x"),
    ("/api/analyze", "text/plain"), ("/api/analyze", None), ("/api/sweep", "text/plain;charset=UTF-8"),
])
def test_posts_without_their_content_type_get_415(client: TestClient, path: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(path, content=CONFIG, headers=headers)
    assert response.status_code == 415, response.text
    assert "takes Content-Type" in response.json()["detail"]


def test_content_type_parameters_are_allowed(client: TestClient) -> None:
    response = client.post(PARSE_PATH, content=CONFIG, headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 200


def test_responses_carry_a_request_id_and_the_page_its_policy(client: TestClient) -> None:
    first, second = client.get("/api/catalogue"), client.get("/api/catalogue")
    assert len(first.headers["x-request-id"]) == 16 and first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]
    refused = client.get("/", headers={"Host": "evil.example"})
    assert refused.headers["x-request-id"] and refused.headers["connection"] == "close"


# --- uploads in flight ------------------------------------------------------------------------------


def test_the_upload_gate_counts_uploads_and_bytes() -> None:
    gate = UploadGate(uploads=2, upload_bytes=100)
    assert gate.admit(60) and not gate.admit(41) and gate.admit(40)  # 100 bytes reserved
    assert not gate.admit(0)  # no upload left
    gate.release(60)
    assert gate.admit(0) and not gate.admit(61)


def test_an_upload_over_the_byte_budget_gets_503_without_its_body_read() -> None:
    app = create_app(ServerLimits(upload_bytes=1000))
    with TestClient(app, raise_server_exceptions=False) as small:
        response = small.post(f"{GGUF_PATH}?size=5000", content=b"\0" * 2000, headers=BINARY_TYPE)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "busy with other uploads" in response.json()["detail"]
        assert small.post(PARSE_PATH, content=CONFIG, headers=JSON_TYPE).status_code == 200  # it fits
        # without a length, an upload reserves its endpoint's whole cap (1 MiB here): over the budget
        chunked = small.post(PARSE_PATH, content=iter([CONFIG]), headers=JSON_TYPE)
        assert chunked.status_code == 503


def _raw_request(port: int, head: str, body: bytes = b"", end_headers: bool = True) -> socket.socket:
    """A connection that has sent ``head`` (request line and headers, then the blank line unless not
    ``end_headers``) and ``body``."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(head.encode() + (b"\r\n\r\n" if end_headers else b"\r\n") + body)
    return connection


def _until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's 30 s timeout: a failure)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    return received


def _status(connection: socket.socket) -> int:
    reply = _until_closed(connection)
    return int(reply.split(b" ", 2)[1]) if reply else 0


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_uploads_over_the_count_get_503_until_one_finishes() -> None:
    limits = ServerLimits(uploads=1)
    with live_server(limits=limits) as url:
        port = _port(url)
        head = f"POST {PARSE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        holder = _raw_request(port, head + f"Content-Length: {len(CONFIG)}", CONFIG[:10])  # its body never ends
        statuses = []
        for _ in range(200):  # until the server has admitted the holder (it reads the headers first)
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            probe.request("POST", PARSE_PATH, CONFIG, JSON_TYPE)
            response = probe.getresponse()
            statuses.append(response.status)
            if response.status == 503:
                assert response.getheader("Retry-After") == "1" and response.getheader("Connection") == "close"
                assert "busy" in json.loads(response.read())["detail"]
                break
            time.sleep(0.02)
        assert statuses[-1] == 503, statuses
        holder.close()  # the client goes away: its slot is given back
        for _ in range(200):
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            probe.request("POST", PARSE_PATH, CONFIG, JSON_TYPE)
            if probe.getresponse().status == 200:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the slot of a client that left was never given back")


# --- timeouts -----------------------------------------------------------------------------------------


def test_a_body_that_does_not_arrive_gets_408_and_a_closed_connection() -> None:
    with live_server(limits=ServerLimits(body_timeout_s=0.3)) as url:
        for path, content_type in ((f"{GGUF_PATH}?size=1000", "application/octet-stream"),
                                   ("/api/analyze", "application/json")):
            slow = _raw_request(_port(url), f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            f"Content-Type: {content_type}\r\nContent-Length: 1000", b"GGUF")
            reply = _until_closed(slow)
            assert reply.startswith(b"HTTP/1.1 408 ") and b"connection: close" in reply.lower(), reply
            assert reply.endswith(b'"the request body did not arrive within 0.3 s (4 of 1000 bytes)"}')


def test_headers_that_do_not_arrive_close_the_connection() -> None:
    with live_server(header_timeout_s=0.3) as url:
        slow = _raw_request(_port(url), "GET /api/catalogue HTTP/1.1\r\nHost: 127.0.0.1", end_headers=False)
        assert _until_closed(slow) == b""  # closed by the server without an answer
        idle = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)  # sends nothing at all
        assert _until_closed(idle) == b""
        served = _raw_request(_port(url), "GET /api/catalogue HTTP/1.1\r\nHost: 127.0.0.1")
        reply = _until_closed(served)  # answered, then closed once idle for the header timeout after its response
        assert reply.startswith(b"HTTP/1.1 200 ") and b"max_sweep_points" in reply


def test_headers_over_16_kib_are_refused() -> None:
    with live_server() as url:
        whole = _raw_request(_port(url), "GET /api/catalogue HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + "x" * 20_000)
        assert _status(whole) == 431  # arrived in one read: counted by the guard
        pieces = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
        pieces.sendall(b"GET /api/catalogue HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(40):  # 40 reads of 1 kB, the headers never ending: h11 refuses past 16 KiB
            if select.select([pieces], [], [], 0.01)[0]:
                break  # the server has answered
            try:
                pieces.sendall(b"X-Pad: " + b"x" * 1000 + b"\r\n")
            except OSError:
                break
        # A reset (our last bytes unread when the server closed) loses the answer; it is a refusal all the same.
        with contextlib.suppress(ConnectionResetError):
            assert _status(pieces) == 400


def test_a_body_over_the_cap_is_refused_as_it_arrives_on_a_real_server() -> None:
    with live_server(limits=ServerLimits(body_bytes=1000)) as url:
        connection = _raw_request(_port(url), "POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Content-Type: application/json\r\nTransfer-Encoding: chunked",
                                  b"800\r\n" + b" " * 2048 + b"\r\n")
        assert _status(connection) == 413
        declared = _raw_request(_port(url), "POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            "Content-Type: application/json\r\nContent-Length: 1001")
        assert _status(declared) == 413  # from the declared length, before any byte of the body


# --- internal errors ------------------------------------------------------------------------------------


def _app_with_failures() -> Any:
    app = create_app()

    @app.get("/api/test-failure")
    async def failure() -> None:
        raise RuntimeError("a bug")

    @app.post("/api/test-overflow")
    async def overflow() -> None:
        raise OverflowError("int too large to convert to float")

    return app


def test_an_internal_error_is_a_json_500_and_the_connection_stays_usable(caplog: pytest.LogCaptureFixture) -> None:
    with live_server(app=_app_with_failures()) as url:
        connection = http.client.HTTPConnection("127.0.0.1", _port(url), timeout=30)
        connection.request("GET", "/api/test-failure")
        failed = connection.getresponse()
        data = json.loads(failed.read())
        assert failed.status == 500 and failed.getheader("Content-Type") == "application/json"
        assert data["error"] == "internal error" and data["request_id"] == failed.getheader("X-Request-Id")
        assert data["request_id"] in data["detail"] and "a bug" not in json.dumps(data)  # no internals leak
        assert failed.getheader("Connection") != "close"
        sock = connection.sock
        connection.request("POST", "/api/test-overflow", b"{}", JSON_TYPE)
        overflow = connection.getresponse()
        assert overflow.status == 400 and "out of range" in json.loads(overflow.read())["detail"]
        connection.request("POST", "/api/analyze", b"{}", JSON_TYPE)
        assert connection.getresponse().status == 200
        assert connection.sock is sock  # one connection throughout: keep-alive survived the 500
        connection.close()
    assert any(data["request_id"] in record.getMessage() for record in caplog.records)  # the log names the request


def test_huge_config_numbers_are_a_400_in_one_line(client: TestClient) -> None:
    config = catalogue_config("llama-2-7b") | {"hidden_size": 2**62}
    for response in (client.post("/api/analyze", json={"config": config}),
                     client.post(PARSE_PATH, content=json.dumps(config).encode(), headers=JSON_TYPE)):
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "hidden_size" in detail and "\n" not in detail


# --- GGUF caps over HTTP ------------------------------------------------------------------------------


def _gguf_with_keys(count: int) -> bytes:
    keys = b"".join(struct.pack("<Q", 5) + b"k%04d" % i + struct.pack("<IB", 0, 1) for i in range(count))
    return b"GGUF" + struct.pack("<IQQ", 3, 0, count) + keys


def test_a_gguf_header_over_the_caps_is_a_400(client: TestClient) -> None:
    data = _gguf_with_keys(5000)
    response = client.post(f"{GGUF_PATH}?size={len(data)}&name=keys.gguf", content=data, headers=BINARY_TYPE)
    assert response.status_code == 400
    assert response.json()["detail"] == ("keys.gguf: 5000 metadata keys; at most 4096 allowed (real files hold "
                                         "under 100)")
