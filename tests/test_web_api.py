"""The JSON API: the same numbers as analyze(), 4xx with a message for every bad parameter (never 500),
the body size cap, bounded sweeps, the OpenAPI description, and a short bounded load with no errors."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_module

require_module("fastapi")
require_module("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from llm_roofline import analyze  # noqa: E402
from llm_roofline.faces.web.app import MAX_BODY_BYTES, MAX_DEVICES, MAX_SWEEP_POINTS, STATIC, create_app  # noqa: E402
from llm_roofline.inputs.model_files import catalogue_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: Any, path: str = "/api/analyze") -> Any:
    return client.post(path, json=body)


def test_analyze_returns_what_analyze_computes(client: TestClient) -> None:
    response = post(client, {"model": "llama-3-8b", "hardware": ["nvidia-l4", "apple-m3-gpu"], "phase": "prefill",
                             "batch": 2, "seq_len": 256, "weights": "int4", "flash_attention": True})
    assert response.status_code == 200
    results = response.json()["results"]
    for result, device in zip(results, ["nvidia-l4", "apple-m3-gpu"], strict=True):
        expected = analyze("llama-3-8b", device, phase="prefill", batch=2, seq_len=256, weights="int4",
                           flash_attention=True)
        assert result["totals"] == pytest.approx(expected.totals.to_dict())
        assert [op["name"] for op in result["ops"]] == [op.name for op in expected.ops]
        assert result["ops"][3]["time_s"] == expected.ops[3].time_s
        assert result["workload"]["weights"] == "int4"
        assert result["ceilings"] and result["time_by_group_s"]


def test_defaults_and_catalogue(client: TestClient) -> None:
    response = post(client, {})
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["model"]["name"] == "llama-2-7b" and result["hardware"]["name"] == "jetson-orin-nx"
    catalogue = client.get("/api/catalogue").json()
    assert {"llama-2-7b", "gpt2"} <= {m["name"] for m in catalogue["models"]}
    assert "jetson-orin-nx" in {d["name"] for d in catalogue["hardware"]}
    assert {"fp16", "int4"} <= set(catalogue["formats"])
    assert catalogue["limits"]["max_body_bytes"] == MAX_BODY_BYTES


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"batch": 0}, 422, "greater than or equal to 1"),
    ({"batch": "many"}, 422, "valid integer"),
    ({"batch": 1.5}, 422, "integer"),
    ({"seq_len": 10**12}, 422, "less than or equal"),
    ({"phase": "train"}, 422, "'prefill' or 'decode'"),
    ({"hardware": []}, 422, "at least 1 item"),
    ({"hardware": ["jetson-orin-nx"] * (MAX_DEVICES + 1)}, 422, f"at most {MAX_DEVICES} items"),
    ({"hardware": "jetson-orin-nx"}, 422, "valid list"),
    ({"lm_head": "some"}, 422, "'last' or 'all'"),
    ({"precisions": ["fp7"]}, 422, "fp16"),
    ({"typo": 1}, 422, "Extra inputs are not permitted"),
    ({"hardware": ["nope"]}, 400, "unknown hardware 'nope'"),
    ({"precisions": ["int4"]}, 400, "jetson-orin-nx has none of the precisions int4"),
    ({"hardware": ["../../etc/passwd.toml"]}, 400, "unknown hardware"),  # names only, never a path
    ({"model": "/etc/hostname"}, 400, "unknown model"),
    ({"model": "src/llm_roofline/data/models/gpt2.json"}, 400, "unknown model"),
    ({"weights": "fp3"}, 400, "unknown precision 'fp3'"),
    ({"kv_cache": "100"}, 400, "between 1 and 64"),
    ({"config": {"hidden_size": 64}}, 400, "missing required key 'model_type'"),
    ({"config": {"model_type": "bert"}}, 400, "unsupported model_type 'bert'"),
    ({"config": catalogue_config("gpt2") | {"n_head": 0}}, 400, "'n_head' must be an integer"),
    ({"config": catalogue_config("llama-2-7b") | {"hidden_act": ["silu"]}}, 400, "unsupported activation ['silu']"),
    ({"config": catalogue_config("llama-2-7b") | {"hidden_size": 10**400, "num_attention_heads": 1,
                                                  "num_key_value_heads": 1}}, 400,
     "'hidden_size' must be"),
    ({"config": "gpt2"}, 422, "valid dictionary"),
])
def test_bad_parameters_get_a_4xx_with_a_message(client: TestClient, body: dict, status: int, message: str) -> None:
    response = post(client, body)
    assert response.status_code == status, response.text
    assert message in response.text


@pytest.mark.parametrize("content", [b"{not json", b'{"batch": Infinity}', b'{"batch": NaN}', b'{"model": NaN}',
                                     b"[]", b"null"])
def test_malformed_json_is_422(client: TestClient, content: bytes) -> None:
    response = client.post("/api/analyze", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["msg"]


def test_deeply_nested_json_is_refused(client: TestClient) -> None:
    nested = b'{"config": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/api/analyze", content=nested, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["detail"]


json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
FIELDS = ["model", "config", "hardware", "phase", "batch", "seq_len", "weights", "activations", "kv_cache",
          "flash_attention", "causal_skip", "lm_head", "precisions"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
def test_random_bodies_never_cause_a_server_error(client: TestClient, body: dict) -> None:
    assert post(client, body).status_code in (200, 400, 422)


def test_sweeps_are_bounded(client: TestClient) -> None:
    response = post(client, {"hardware": ["jetson-orin-nx", "nvidia-rtx-4090"], "vary": "batch",
                             "values": [1, 8, 64]}, "/api/sweep")
    assert response.status_code == 200
    points = response.json()["points"]
    assert [p["batch"] for p in points] == [1, 8, 64]
    assert points[1]["totals"][1]["time_s"] == analyze("llama-2-7b", "nvidia-rtx-4090", batch=8).totals.time_s
    too_many = post(client, {"vary": "seq_len", "values": list(range(1, MAX_SWEEP_POINTS + 2))}, "/api/sweep")
    assert too_many.status_code == 422 and f"at most {MAX_SWEEP_POINTS} items" in too_many.text
    assert post(client, {"vary": "batch", "values": [2**30]}, "/api/sweep").status_code == 422
    assert post(client, {"vary": "heads", "values": [1]}, "/api/sweep").status_code == 422


def parse(client: TestClient, content: bytes | Iterator[bytes], name: str = "config.json") -> Any:
    return client.post(f"/api/models/parse?name={name}", content=content,
                       headers={"Content-Type": "application/json"})


def test_upload_is_parsed_in_memory(client: TestClient) -> None:
    config = catalogue_config("qwen2.5-0.5b")
    response = parse(client, json.dumps(config).encode())
    assert response.status_code == 200
    data = response.json()
    assert data["model"]["family"] == "qwen2" and data["model"]["params"] == 494_032_768
    assert data["config"] == config
    analyzed = post(client, {"config": data["config"]}).json()["results"][0]
    assert analyzed["totals"]["time_s"] == analyze("qwen2.5-0.5b", "jetson-orin-nx").totals.time_s


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b"\xff\xfe\x00binary", "not a text file"),
    (b'{"model_type": "llama"}', "missing required key 'hidden_size'"),
    (b"", "not valid JSON"),
    (b"[" * 100_000, "JSON nested deeper than 64 levels"),
])
def test_bad_uploads_get_400_with_a_message(client: TestClient, content: bytes, message: str) -> None:
    response = parse(client, content)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_uploads_are_size_capped(client: TestClient) -> None:
    padding = json.dumps(catalogue_config("gpt2") | {"notes": "x" * MAX_BODY_BYTES}).encode()
    response = parse(client, padding)
    assert response.status_code == 413 and str(MAX_BODY_BYTES) in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    assert parse(client, chunks()).status_code == 413
    huge_analyze = client.post("/api/analyze", content=b" " * (MAX_BODY_BYTES + 1),
                               headers={"Content-Type": "application/json"})
    assert huge_analyze.status_code == 413
    assert parse(client, json.dumps(catalogue_config("gpt2")).encode()).status_code == 200  # still serving


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert {"/api/analyze", "/api/sweep", "/api/models/parse", "/api/catalogue"} <= set(spec["paths"])
    schema = spec["components"]["schemas"]["AnalyzeRequest"]["properties"]
    assert schema["batch"]["minimum"] == 1 and schema["hardware"]["maxItems"] == MAX_DEVICES


def test_page_and_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith(("/static/", "data:")), src
        if src.startswith("/static/"):
            assert client.get(src).status_code == 200
    for asset in ("app.js", "charts.js", "report.js", "style.css", "index.html"):
        text = STATIC.joinpath(asset).read_text().replace("http://www.w3.org/2000/svg", "")  # a name, not a fetch
        assert not re.search(r"https?://", text), asset
    assert client.get("/static/../app.py").status_code == 404


def test_short_bounded_load_has_no_errors() -> None:
    """A few hundred real HTTP requests over loopback: all answered correctly. The requests/s figure is
    measured by bench/web_load.py and recorded in docs/benchmarks.md, not asserted here."""
    from live_server import live_server

    spec = importlib.util.spec_from_file_location("web_load", ROOT / "bench" / "web_load.py")
    assert spec and spec.loader
    web_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web_load)
    with live_server() as url:
        result = web_load.load(int(url.rsplit(":", 1)[1]), total_requests=300, connections=4, time_limit_s=60)
    assert result.requests == 300 and result.errors == 0


@pytest.fixture(scope="module")
def q4_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small llama GGUF with Q4_K/Q6_K tensors and a 20,000-token vocabulary (a header of some size),
    its tensor data a sparse hole (the file is as long as a real one; the upload sends only its start)."""
    require_module("gguf")
    from gguf_factory import T, llama_keys, llama_like_tensors, write_gguf

    path = tmp_path_factory.mktemp("gguf") / "tiny-q4.gguf"
    tensors = llama_like_tensors(256, 4, 4, 2, 64, 512, 320)
    write_gguf(path, "llama", llama_keys(256, 4, 4, 2, 512), tensors,
               lambda name, shape: T.Q6_K if name == "output.weight" else T.Q4_K, with_data=False,
               vocab_tokens=20_000)
    return path


def upload_gguf(client: TestClient, data: bytes, size: int, name: str = "tiny-q4.gguf") -> Any:
    return client.post(f"/api/models/gguf?name={name}&size={size}", content=data,
                       headers={"Content-Type": "application/octet-stream"})


def test_gguf_header_upload_is_analyzed_with_the_files_formats(client: TestClient, q4_gguf: Path) -> None:
    from llm_roofline import load_model

    size = q4_gguf.stat().st_size
    with open(q4_gguf, "rb") as f:
        start = f.read(1 << 20)  # the header is ~250 kB of this; the rest is (zero) tensor data
    response = upload_gguf(client, start, size)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"]["family"] == "llama" and data["file"]["file_bytes"] == size
    assert data["file"]["bytes_by_type"].keys() == {"Q4_K", "Q6_K", "F32"}
    body = {"gguf": data["gguf"], "weights": None, "hardware": ["jetson-orin-nx"], "seq_len": 512}
    result = post(client, body).json()["results"][0]
    local = analyze(load_model(str(q4_gguf)), "jetson-orin-nx", seq_len=512)
    assert result["totals"]["time_s"] == local.totals.time_s
    assert result["memory"]["weight_bytes"] == local.memory.weight_bytes
    assert result["workload"]["weights"] == local.workload.weights_label
    # another format may still be chosen for the same structure
    fp16 = post(client, body | {"weights": "fp16"}).json()["results"][0]
    assert fp16["memory"]["weight_bytes"] > 3 * result["memory"]["weight_bytes"]


def test_gguf_upload_errors(client: TestClient, q4_gguf: Path) -> None:
    size = q4_gguf.stat().st_size
    start = q4_gguf.read_bytes()[:1 << 20]
    cut = upload_gguf(client, start[:50_000], size)  # the vocabulary goes on past what was sent
    assert cut.status_code == 400 and "send more of its start" in cut.json()["detail"]
    small = upload_gguf(client, start, 1000)
    assert small.status_code == 400 and "smaller than the" in small.json()["detail"]
    short = upload_gguf(client, start, size - 100_000)  # the tensors end past the declared size
    assert short.status_code == 400 and "truncated GGUF file" in short.json()["detail"]
    not_gguf = upload_gguf(client, b"{" + b" " * 100 + b"}", 1000)
    assert not_gguf.status_code == 400 and "not a GGUF file" in not_gguf.json()["detail"]
    assert client.post("/api/models/gguf", content=start,
                       headers={"Content-Type": "application/octet-stream"}).status_code == 422  # no size
    unknown = post(client, {"gguf": "0" * 24})
    assert unknown.status_code == 400 and "upload the file again" in unknown.json()["detail"]
    assert post(client, {"gguf": "../etc/passwd"}).status_code == 422

    def chunks() -> Iterator[bytes]:  # over the header cap: refused as it arrives
        for _ in range(65):
            yield b"\0" * (1 << 20)

    assert upload_gguf(client, chunks(), 1 << 30).status_code == 413  # type: ignore[arg-type]


def test_a_length_past_the_context_window_is_a_warning(client: TestClient) -> None:
    inside = post(client, {"model": "llama-2-7b", "seq_len": 4095}).json()["results"][0]
    beyond = post(client, {"model": "llama-2-7b", "seq_len": 4096}).json()["results"][0]  # decode: 4096 + 1
    assert inside["warnings"] == []
    assert beyond["warnings"] == [analyze("llama-2-7b", "jetson-orin-nx", seq_len=4096).warnings[0]]
    assert "4097 tokens exceed" in beyond["warnings"][0] and "(4096, max_position_embeddings)" in beyond["warnings"][0]


def test_analyze_carries_the_layer_graph_of_the_model_and_workload(client: TestClient) -> None:
    from llm_roofline.faces.report.graph import layer_graph

    for body in ({"model": "gemma-3-4b", "hardware": ["nvidia-l4"], "batch": 2},
                 {"model": "gemma-3-4b", "hardware": ["nvidia-l4"], "batch": 3},  # the same graph, kept
                 {"model": "gemma-3-4b", "hardware": ["nvidia-l4"], "flash_attention": True},  # another one
                 {"model": "lfm2-1.2b", "hardware": ["apple-m3-gpu", "nvidia-l4"], "phase": "prefill"}):
        response = post(client, body)
        assert response.status_code == 200
        options = {k: v for k, v in body.items() if k not in ("model", "hardware")}
        expected = layer_graph(analyze(body["model"], body["hardware"][0], **options))
        assert response.json()["graph"] == expected
        names = {op["name"] for op in response.json()["results"][0]["ops"]}
        assert set(response.json()["graph"]["ops"]) == names
