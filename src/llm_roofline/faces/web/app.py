"""The web API and the page: the same ``analyze()`` as the CLI, behind FastAPI.

- ``GET /``: the page; ``GET /static/...``: its own script and style (no CDN).
- ``GET /api/catalogue``: models, devices, number formats and the limits below.
- ``POST /api/analyze``: one step of a model on up to ``MAX_DEVICES`` devices.
- ``POST /api/advice``: the advice for the first device, as ``llm-roofline advise --format json``.
- ``POST /api/explore``: tokens/s over a bounded batch x length grid (the sweep), its compute-bound boundary.
- ``POST /api/timeline``: a prompt's prefill, then decode steps (TTFT, TPOT, bound changes).
- ``POST /api/sweep``: totals over at most ``MAX_SWEEP_POINTS`` batch sizes or lengths.
- ``POST /api/models/parse``: a config.json sent as the raw request body, parsed in memory.
- ``POST /api/models/gguf``: the start of a GGUF file (its header) and the file's size; the model read
  from it is kept in memory (the last ``MAX_GGUF_MODELS``) under a key that /api/analyze accepts.
- ``GET /api/openapi.json``: the OpenAPI description.

Every parameter is validated: malformed requests get 422 (pydantic's field errors), input the
analyzer refuses gets 400 with its one-line message. Names are looked up in the catalogues only: a
request can never make the server open a path. Before any handler runs, ``guard.RequestGuard`` checks
the Host, the origin and the content type, caps and times bodies (413, 408: ``MAX_BODY_BYTES``, a GGUF
header ``MAX_GGUF_HEADER_BYTES``) and the uploads in flight (503), and turns any escaped exception into
a JSON 500 with a request id. Uploads are parsed, and sweeps computed, in worker threads
(``ServerLimits.worker_threads`` at once), so that the event loop keeps answering.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Collection
from importlib import resources
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_roofline import __version__
from llm_roofline.core import limits
from llm_roofline.core.engines import engines
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import PRECISIONS, format_names
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import mix_names, recipe_names
from llm_roofline.core.roofline import Analysis, analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.faces.report.charts import INFERENCE_PRECISIONS, analysis_payload
from llm_roofline.faces.report.graph import layer_graph
from llm_roofline.faces.report.render import advice_payload
from llm_roofline.faces.web.explore import default_grid, heatmap_payload, timeline_payload
from llm_roofline.faces.web.guard import (
    BINARY,
    JSON,
    MAX_BODY_BYTES,
    MAX_GGUF_HEADER_BYTES,
    Body,
    RequestGuard,
    ServerLimits,
    raw_body,
)
from llm_roofline.features.studies.advice import advise
from llm_roofline.inputs.device_files import hardware_names, load_hardware
from llm_roofline.inputs.gguf import GGUFModel, read_gguf_model_start
from llm_roofline.inputs.model_files import load_model, model_from_hf_config, model_names, resolve_model_name
from llm_roofline.inputs.names import resolve_device
from llm_roofline.inputs.reading import parse_json

MAX_GGUF_FILE_BYTES = 1 << 50  # the size a GGUF upload may declare
MAX_GGUF_MODELS = 16  # uploaded GGUF models kept in memory, the most recently used
MAX_LAYER_GRAPHS = 64  # layer graphs kept as JSON text, by model and workload
GGUF_PATH = "/api/models/gguf"
PARSE_PATH = "/api/models/parse"
MAX_DEVICES = 8
MAX_BATCH = int(limits.WORKLOAD["batch"].high)  # the workload's own ranges (core/limits.py)
MAX_SEQ_LEN = int(limits.WORKLOAD["seq_len"].high)
MAX_SWEEP_POINTS = 64
MAX_EXPLORE_AXIS = 64  # values per heatmap axis; the grid is also capped by explore.MAX_GRID_POINTS
MAX_TIMELINE_STEPS = 100_000  # decode steps of one timeline request (a fraction of a second: timeline.py)
STATIC = resources.files(__package__).joinpath("static")
# The page runs only its own files: a fetched script or style would be refused by the browser.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

PrecisionName = Annotated[str, Field(min_length=1, max_length=32, description="a format name or bits per element")]


class AnalyzeRequest(BaseModel):
    """One forward step: a model (catalogue name or an uploaded config), devices, and the workload."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("llama-2-7b", max_length=100, description="a built-in model name (see /api/catalogue)")
    config: dict[str, Any] | None = Field(None, description="a parsed config.json; replaces `model` when given")
    gguf: str | None = Field(None, pattern="^[0-9a-f]{24}$",
                             description=f"the key {GGUF_PATH} returned; replaces `model` when given")
    hardware: list[Annotated[str, Field(max_length=100)]] = Field(
        ["jetson-orin-nx"], min_length=1, max_length=MAX_DEVICES, description="catalogue device names")
    phase: Literal["prefill", "decode"] = "decode"
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="sequences in the batch")
    seq_len: int = Field(1024, ge=1, le=MAX_SEQ_LEN, description="prefill: prompt tokens; decode: tokens cached")
    weights: PrecisionName | None = Field(
        None, description="null (the default): the model's own formats, fp16 for a config.json, a GGUF file's types")
    activations: PrecisionName = "fp16"
    kv_cache: PrecisionName | None = Field(None, description="default: the activations' format")
    flash_attention: bool = False
    causal_skip: bool | None = Field(None, description="default: on exactly with FlashAttention")
    lm_head: Literal["last", "all"] = "last"
    fuse: Literal["none", "elementwise"] = Field(
        "none", description="elementwise: norms, RoPE, activations, residual adds inside the neighbouring matmul")
    sparsity: Literal["none", "2:4"] = Field(
        "none", description="2:4: the layers' projections pruned 2:4 on devices with sparse tensor cores")
    mla: Literal["naive", "absorbed"] | None = Field(
        None, description="latent attention (DeepSeek); default: naive for prefill, absorbed for decode")
    engine: str | None = Field(None, max_length=32, description="the inference engine for the expected time "
                               "(see /api/catalogue `engines`); default: the device class's figures")
    # Literal of the PRECISIONS tuple: pydantic reads it as its members (one list of names); mypy wants them spelt out.
    precisions: list[Literal[PRECISIONS]] | None = Field(  # type: ignore[valid-type]
        None, max_length=len(PRECISIONS), description=f"roofs to draw (default {', '.join(INFERENCE_PRECISIONS)})")


class AdviceRequest(AnalyzeRequest):
    """The advice for the first device: the bound and why, the fit, the levers that pay most."""

    target_ms: float | None = Field(None, gt=0, le=limits.STUDY["time_per_token_s"].high * 1e3,
                                    description="a latency target per output token, ms (judged by feasibility)")


class ExploreRequest(AnalyzeRequest):
    """Tokens/s over a batch x length grid for the first device (the request's batch and seq_len are not used)."""

    batches: list[Annotated[int, Field(ge=1, le=MAX_BATCH)]] | None = Field(
        None, min_length=1, max_length=MAX_EXPLORE_AXIS, description="rows (default: 1 .. 512 doubling)")
    seq_lens: list[Annotated[int, Field(ge=1, le=MAX_SEQ_LEN)]] | None = Field(
        None, min_length=1, max_length=MAX_EXPLORE_AXIS,
        description="columns (default: 128 .. the model's context window, doubling)")


class TimelineRequest(AnalyzeRequest):
    """A prompt of ``seq_len`` tokens, then ``steps`` decode steps, on the first device."""

    steps: int = Field(512, ge=1, le=MAX_TIMELINE_STEPS, description="decode steps (tokens generated after the first)")


class SweepRequest(AnalyzeRequest):
    """The same step at several batch sizes or lengths: totals only."""

    vary: Literal["batch", "seq_len"] = "batch"
    values: list[Annotated[int, Field(ge=1, le=MAX_SEQ_LEN)]] = Field(
        ..., min_length=1, max_length=MAX_SWEEP_POINTS, description=f"at most {MAX_SWEEP_POINTS} values")

    @model_validator(mode="after")
    def _values_in_range(self) -> SweepRequest:
        if self.vary == "batch" and max(self.values) > MAX_BATCH:
            raise ValueError(f"batch values must be <= {MAX_BATCH}")
        return self


def _catalogue_model(name: str) -> ModelSpec:
    return load_model(resolve_model_name(name))  # a catalogue name as people write it, never a path


def _catalogue_device(name: str) -> HardwareSpec:
    return load_hardware(resolve_device(name))  # a catalogue name as people write it, never a path


def parse_config(data: Any, name: str = "uploaded") -> ModelSpec:
    """A model from an uploaded config.json's content; any failure is the user's input error."""
    try:
        return model_from_hf_config(data, name=name, where=f"{name}")
    except InputError:
        raise
    except (ValueError, TypeError, KeyError, ArithmeticError) as err:
        raise InputError(f"{name}: not a usable model config ({err.__class__.__name__}: {err})") from None


def read_gguf_upload(data: bytes | bytearray, size: int, name: str) -> tuple[str, GGUFModel]:
    """The model of an uploaded GGUF header and its key, a hash of what was sent (a worker thread runs this:
    the reader's caps bound its time and memory, see inputs/gguf.py)."""
    read = read_gguf_model_start(data, size, name)
    digest = hashlib.sha256(b"%d:%s:" % (size, name.encode()))
    digest.update(data)
    return digest.hexdigest()[:24], read


class GGUFModels:
    """Models read from uploaded GGUF headers, by key, the most recent kept (used from the event loop only)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.models: OrderedDict[str, ModelSpec] = OrderedDict()

    def add(self, key: str, model: ModelSpec) -> None:
        self.models[key] = model
        self.models.move_to_end(key)
        while len(self.models) > self.capacity:
            self.models.popitem(last=False)

    def get(self, key: str) -> ModelSpec:
        if key not in self.models:
            raise InputError(f"no uploaded GGUF model '{key}' (the server keeps the last {self.capacity} and forgets "
                             f"them when it restarts): upload the file again")
        self.models.move_to_end(key)
        return self.models[key]


class LayerGraphs:
    """The layer graphs sent, as JSON text, by model and workload (the graph is theirs: its operators are named
    the same on every device); the most recent kept. A page sends the same model many times while a length or
    a batch changes, and the graph costs more than the analysis (used from the event loop only)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.texts: OrderedDict[tuple[ModelSpec, Workload], str] = OrderedDict()

    def text(self, analysis: Analysis) -> str:
        key = (analysis.model, analysis.workload)  # the workload as analyzed (stored formats, sparsity resolved)
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = _json_text(layer_graph(analysis))
            while len(self.texts) > self.capacity:
                self.texts.popitem(last=False)
        self.texts.move_to_end(key)
        return text


def _request_model(request: AnalyzeRequest, uploads: GGUFModels) -> ModelSpec:
    if request.gguf is not None:
        return uploads.get(request.gguf)
    return _catalogue_model(request.model) if request.config is None else parse_config(request.config)


def _workload(request: AnalyzeRequest, **changes: Any) -> Workload:
    fields = {"phase": request.phase, "batch": request.batch, "seq_len": request.seq_len,
              "weights": request.weights, "activations": request.activations, "kv_cache": request.kv_cache,
              "flash_attention": request.flash_attention, "causal_skip": request.causal_skip,
              "lm_head": request.lm_head, "mla": request.mla, "fuse": request.fuse,
              "sparsity": request.sparsity, "engine": request.engine}
    return Workload(**(fields | changes))


def _json_text(content: Any) -> str:
    """Serialize with the standard library (fast), refusing numbers JSON cannot carry."""
    try:
        return json.dumps(content, allow_nan=False, separators=(",", ":"))
    except (ValueError, OverflowError):
        raise InputError("the figures overflow (a size in the config is out of range)") from None


def _json(content: Any) -> Response:
    return Response(_json_text(content), media_type=JSON)


def _config_upload(body: bytes | bytearray, name: str) -> str:
    """An uploaded config.json parsed, as the response's JSON (a worker thread runs this)."""
    try:
        text = str(body, "utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a text file (expected a config.json)") from None
    data = parse_json(text, name)  # the CLI's reader: depth, NaN and digit limits
    if not isinstance(data, dict):
        raise InputError(f"{name}: expected a JSON object (a Hugging Face config.json)")
    spec = parse_config(data, name)
    return _json_text({"model": spec.to_dict() | {"params": spec.params}, "config": data})


def _sweep_text(request: SweepRequest, model: ModelSpec, devices: list[HardwareSpec]) -> str:
    """The sweep's response (a worker thread runs this: up to MAX_SWEEP_POINTS x MAX_DEVICES analyses)."""
    points = []
    for value in request.values:
        workload = _workload(request, **{request.vary: value})
        points.append({request.vary: value, "totals": [analyze(model, d, workload).totals.to_dict() for d in devices]})
    return _json_text({"vary": request.vary, "hardware": request.hardware, "points": points})


def _advice_text(request: AdviceRequest, model: ModelSpec, device: HardwareSpec) -> str:
    """The advice's response, as ``llm-roofline advise --format json`` prints it (a worker thread runs this:
    some thirty analyses and a search over the catalogue's devices)."""
    target = None if request.target_ms is None else request.target_ms * 1e-3
    return _json_text(advice_payload(advise(model, device, _workload(request), target)))


def _explore_text(request: ExploreRequest, model: ModelSpec, device: HardwareSpec) -> str:
    """The heatmap's response (a worker thread runs this: the sweep over a bounded grid)."""
    batches, seq_lens = default_grid(model, request.phase)
    return _json_text(heatmap_payload(model, device, _workload(request), request.batches or batches,
                                      request.seq_lens or seq_lens))


def _timeline_text(request: TimelineRequest, model: ModelSpec, device: HardwareSpec) -> str:
    """The timeline's response (a worker thread runs this)."""
    return _json_text(timeline_payload(model, device, _workload(request), request.seq_len, request.steps))


def create_app(limits: ServerLimits | None = None, hosts: Collection[str] = ()) -> FastAPI:
    """The application: the page, its assets and the JSON API, behind ``RequestGuard``.

    ``hosts``: names besides localhost and the server's own address that the Host header may carry (the
    ``--host`` the server is bound to, when it is a name)."""
    limits = limits or ServerLimits()
    app = FastAPI(title="llm-roofline", version=__version__, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="Roofline analysis of LLM inference: the same `analyze()` as the CLI.")
    uploads = GGUFModels(MAX_GGUF_MODELS)
    graphs = LayerGraphs(MAX_LAYER_GRAPHS)
    workers = anyio.CapacityLimiter(limits.worker_threads)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, err: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        # Field errors without the offending input: it may hold what JSON cannot carry (NaN, Infinity).
        details = [{"loc": [str(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in err.errors()]
        return JSONResponse({"detail": details}, status_code=422)

    @app.exception_handler(ArithmeticError)
    async def out_of_range(_request: Request, _err: ArithmeticError) -> JSONResponse:
        return JSONResponse({"detail": "the figures overflow: a size in the model config is out of range"}, 400)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC.joinpath("index.html")), media_type="text/html")

    @app.get("/api/catalogue", summary="models, devices, number formats and request limits")
    async def catalogue() -> Response:
        models = [load_model(name) for name in model_names()]
        devices = [load_hardware(name) for name in hardware_names()]
        return _json({
            "models": [{"name": m.name, "display_name": m.display_name or m.name, "family": m.family,
                        "params": m.params} for m in models],
            "hardware": [{"name": d.name, "display_name": d.display_name, "kind": d.kind,
                          "memory_bytes": d.memory_bytes, "memory_bytes_per_s": d.memory_bytes_per_s,
                          "peak_flops_per_s": d.peak_flops_per_s} for d in devices],
            "formats": format_names(),
            "mixes": mix_names(),  # llama.cpp's per-tensor mixes (q4_k_m, ...): weights only
            "recipes": recipe_names(),  # other engines' per-tensor recipes (ExecuTorch's 8da4w): weights only
            "engines": [{"name": e.name, "kinds": list(e.kinds), "fusion": e.fusion, "description": e.description}
                        for e in engines().values()],
            "precisions": list(PRECISIONS),
            "limits": {"max_body_bytes": limits.body_bytes, "max_gguf_header_bytes": limits.gguf_header_bytes,
                       "max_devices": MAX_DEVICES, "max_batch": MAX_BATCH, "max_seq_len": MAX_SEQ_LEN,
                       "max_sweep_points": MAX_SWEEP_POINTS},
        })

    @app.post("/api/analyze", summary="per-operator roofline of one step on each device",
              responses={200: {"description": "`results`: one analysis per device (Analysis.to_dict() plus "
                                              "`ceilings`, `time_by_group_s` and per-operator `time_share`); `graph`: "
                                              "the layer dataflow graph (graph.layer_graph), nodes named by operator"},
                         400: {"description": "input the analyzer refuses, with its message"}})
    async def analyze_endpoint(request: AnalyzeRequest) -> Response:
        model = _request_model(request, uploads)
        workload = _workload(request)
        devices = [_catalogue_device(name) for name in request.hardware]
        analyses = [analyze(model, device, workload) for device in devices]
        results = _json_text([analysis_payload(a, request.precisions) for a in analyses])
        return Response(f'{{"results":{results},"graph":{graphs.text(analyses[0])}}}', media_type=JSON)

    async def first_device(request: Any, text_of: Callable[[Any, ModelSpec, HardwareSpec], str]) -> Response:
        """``text_of(request, model, device)`` for the request's first device, in a worker thread."""
        model = _request_model(request, uploads)
        device = _catalogue_device(request.hardware[0])
        text = await anyio.to_thread.run_sync(text_of, request, model, device, limiter=workers)
        return Response(text, media_type=JSON)

    @app.post("/api/advice", summary="in plain words: the bound and why, the fit, the changes that pay most",
              responses={200: {"description": "`llm-roofline advise --format json` for the first device: `summary` "
                                              "(sentences), `levers` (whatif variants in words, ranked), `top`, "
                                              "`whatif`, `feasibility` (with `target_ms`)"},
                         400: {"description": "input the analyzer refuses, with its message"}})
    async def advice_endpoint(request: AdviceRequest) -> Response:
        return await first_device(request, _advice_text)

    @app.post("/api/explore", summary="tokens/s over a batch x length grid, the compute-bound boundary, the fit",
              responses={200: {"description": "explore.heatmap_payload: `batch`, `seq_len`, grids `tokens_per_s`, "
                                              "`expected_tokens_per_s`, `compute_bound`, `fits`, `memory_bytes` and "
                                              "`boundary` (as `sweep --query boundary`)"}})
    async def explore_endpoint(request: ExploreRequest) -> Response:
        return await first_device(request, _explore_text)

    @app.post("/api/timeline", summary="a generation: the prompt's prefill, then decode steps (TTFT, TPOT)",
              responses={200: {"description": "explore.timeline_payload: as `llm-roofline timeline`, with "
                                              "sampled steps"}})
    async def timeline_endpoint(request: TimelineRequest) -> Response:
        return await first_device(request, _timeline_text)

    @app.post("/api/sweep", summary="step totals over a bounded list of batch sizes or lengths",
              responses={200: {"description": "`points`: per value, the totals on each device"}})
    async def sweep_endpoint(request: SweepRequest) -> Response:
        model = _request_model(request, uploads)
        devices = [_catalogue_device(name) for name in request.hardware]
        text = await anyio.to_thread.run_sync(_sweep_text, request, model, devices, limiter=workers)
        return Response(text, media_type=JSON)

    @app.post(PARSE_PATH, summary="parse an uploaded config.json, sent as the raw request body",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"type": "object", "description": "a Hugging Face config.json"}}}}},
              responses={200: {"description": "`model`: the structure read; `config`: the parsed JSON, to send "
                                              "back as `config` in /api/analyze"},
                         413: {"description": f"body over {MAX_BODY_BYTES} bytes"}})
    async def parse_model(request: Request, name: Annotated[str, Query(max_length=100)] = "uploaded") -> Response:
        body = await raw_body(request)  # in memory, capped by RequestGuard; never written anywhere
        text = await anyio.to_thread.run_sync(_config_upload, body, name, limiter=workers)
        return Response(text, media_type=JSON)

    @app.post(GGUF_PATH, summary="read a model from the start of a GGUF file, sent as the raw request body",
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary",
                             "description": "the file's first bytes: its header, at least"}}}}},
              responses={200: {"description": "`gguf`: the key to send as `gguf` in /api/analyze; `model`: the "
                                              "structure read; `file`: the formats and bytes of its tensors"},
                         413: {"description": f"body over {MAX_GGUF_HEADER_BYTES} bytes"}})
    async def parse_gguf(request: Request, size: Annotated[int, Query(ge=1, le=MAX_GGUF_FILE_BYTES)],
                         name: Annotated[str, Query(max_length=100)] = "uploaded.gguf") -> Response:
        body = await raw_body(request)  # in memory, capped by RequestGuard; never written anywhere
        key, read = await anyio.to_thread.run_sync(read_gguf_upload, body, size, name, limiter=workers)
        uploads.add(key, read.model)
        file = read.to_dict()
        del file["path"], file["model"]
        return _json({"gguf": key, "model": read.model.to_dict() | {"params": read.model.params}, "file": file})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    bodies = {"/api/analyze": Body(JSON, limits.body_bytes), "/api/sweep": Body(JSON, limits.body_bytes),
              "/api/advice": Body(JSON, limits.body_bytes), "/api/explore": Body(JSON, limits.body_bytes),
              "/api/timeline": Body(JSON, limits.body_bytes),
              PARSE_PATH: Body(JSON, limits.body_bytes, upload=True),
              GGUF_PATH: Body(BINARY, limits.gguf_header_bytes, upload=True)}
    app.add_middleware(RequestGuard, limits=limits, bodies=bodies, hosts=hosts, page_policy=PAGE_POLICY)
    return app
