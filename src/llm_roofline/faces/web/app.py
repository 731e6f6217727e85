"""The web API and the page: the same ``analyze()`` as the CLI, behind FastAPI.

- ``GET /``: the page; ``GET /static/...``: its own script and style (no CDN).
- ``GET /api/catalogue``: models, devices, number formats and the limits below.
- ``POST /api/analyze``: one step of a model on up to ``MAX_DEVICES`` devices.
- ``POST /api/sweep``: totals over at most ``MAX_SWEEP_POINTS`` batch sizes or lengths.
- ``POST /api/models/parse``: a config.json sent as the raw request body, parsed in memory.
- ``POST /api/models/gguf``: the start of a GGUF file (its header) and the file's size; the model read
  from it is kept in memory (the last ``MAX_GGUF_MODELS``) under a key that /api/analyze accepts.
- ``GET /api/openapi.json``: the OpenAPI description.

Every parameter is validated: malformed requests get 422 (pydantic's field errors), input the
analyzer refuses gets 400 with its one-line message, bodies over ``MAX_BODY_BYTES`` (a GGUF header:
``MAX_GGUF_HEADER_BYTES``) get 413. Names are looked up in the catalogues only: a request can never
make the server open a path.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_roofline import __version__
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import PRECISIONS, format_names
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.faces.report.charts import INFERENCE_PRECISIONS, analysis_payload
from llm_roofline.inputs.device_files import hardware_names, load_hardware
from llm_roofline.inputs.gguf import read_gguf_model_start
from llm_roofline.inputs.model_files import load_model, model_from_hf_config, model_names, resolve_model_name
from llm_roofline.inputs.names import resolve_device

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a config.json is a few kB; the cap holds for every request but one
MAX_GGUF_HEADER_BYTES = 64 << 20  # the start of a GGUF file: its header (vocabularies and merges: ~1-15 MB)
MAX_GGUF_FILE_BYTES = 1 << 50  # the size a GGUF upload may declare
MAX_GGUF_MODELS = 16  # uploaded GGUF models kept in memory, the most recently used
GGUF_PATH = "/api/models/gguf"
MAX_DEVICES = 8
MAX_BATCH = 1 << 20
MAX_SEQ_LEN = 1 << 24
MAX_SWEEP_POINTS = 64
STATIC = resources.files(__package__).joinpath("static")
# The page runs only its own files: a fetched script or style would be refused by the browser.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")

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
    # Literal of the PRECISIONS tuple: pydantic reads it as its members (one list of names); mypy wants them spelt out.
    precisions: list[Literal[PRECISIONS]] | None = Field(  # type: ignore[valid-type]
        None, max_length=len(PRECISIONS), description=f"roofs to draw (default {', '.join(INFERENCE_PRECISIONS)})")


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


class BodySizeLimit:
    """Refuse (413) any request whose body is larger than ``limit`` bytes (``limits`` by path), before the
    app reads it.

    The body is counted as it arrives, so a missing or false Content-Length cannot get past the cap;
    an accepted body is handed to the app from memory.
    """

    def __init__(self, app: ASGIApp, limit: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.limits = limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = JSONResponse({"detail": f"request body too large: the limit is {limit} bytes"}, 413)
        await response(scope, receive, send)


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


class GGUFModels:
    """Models read from uploaded GGUF headers, by key (a hash of what was sent), the most recent kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.models: OrderedDict[str, ModelSpec] = OrderedDict()

    def add(self, data: bytes, size: int, name: str) -> tuple[str, Any]:
        read = read_gguf_model_start(data, size, name)
        key = hashlib.sha256(b"%d:%s:" % (size, name.encode()) + data).hexdigest()[:24]
        self.models[key] = read.model
        self.models.move_to_end(key)
        while len(self.models) > self.capacity:
            self.models.popitem(last=False)
        return key, read

    def get(self, key: str) -> ModelSpec:
        if key not in self.models:
            raise InputError(f"no uploaded GGUF model '{key}' (the server keeps the last {self.capacity} and forgets "
                             f"them when it restarts): upload the file again")
        self.models.move_to_end(key)
        return self.models[key]


def _request_model(request: AnalyzeRequest, uploads: GGUFModels) -> ModelSpec:
    if request.gguf is not None:
        return uploads.get(request.gguf)
    return _catalogue_model(request.model) if request.config is None else parse_config(request.config)


def _workload(request: AnalyzeRequest, **changes: Any) -> Workload:
    fields = {"phase": request.phase, "batch": request.batch, "seq_len": request.seq_len,
              "weights": request.weights, "activations": request.activations, "kv_cache": request.kv_cache,
              "flash_attention": request.flash_attention, "causal_skip": request.causal_skip,
              "lm_head": request.lm_head, "mla": request.mla, "fuse": request.fuse,
              "sparsity": request.sparsity}
    return Workload(**(fields | changes))


def _json(content: Any) -> Response:
    """Serialize with the standard library (fast), refusing numbers JSON cannot carry."""
    try:
        text = json.dumps(content, allow_nan=False, separators=(",", ":"))
    except (ValueError, OverflowError):
        raise InputError("the figures overflow (a size in the config is out of range)") from None
    return Response(text, media_type="application/json")


def create_app() -> FastAPI:
    """The application: the page, its assets and the JSON API."""
    app = FastAPI(title="llm-roofline", version=__version__, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="Roofline analysis of LLM inference: the same `analyze()` as the CLI.")
    uploads = GGUFModels(MAX_GGUF_MODELS)

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

    @app.middleware("http")
    async def page_policy(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if not request.url.path.startswith("/api/"):
            response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

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
            "precisions": list(PRECISIONS),
            "limits": {"max_body_bytes": MAX_BODY_BYTES, "max_gguf_header_bytes": MAX_GGUF_HEADER_BYTES,
                       "max_devices": MAX_DEVICES, "max_batch": MAX_BATCH, "max_seq_len": MAX_SEQ_LEN,
                       "max_sweep_points": MAX_SWEEP_POINTS},
        })

    @app.post("/api/analyze", summary="per-operator roofline of one step on each device",
              responses={200: {"description": "`results`: one analysis per device (Analysis.to_dict() plus "
                                              "`ceilings`, `time_by_group_s` and per-operator `time_share`)"},
                         400: {"description": "input the analyzer refuses, with its message"}})
    async def analyze_endpoint(request: AnalyzeRequest) -> Response:
        model = _request_model(request, uploads)
        workload = _workload(request)
        devices = [_catalogue_device(name) for name in request.hardware]
        return _json({"results": [analysis_payload(analyze(model, device, workload), request.precisions)
                                  for device in devices]})

    @app.post("/api/sweep", summary="step totals over a bounded list of batch sizes or lengths",
              responses={200: {"description": "`points`: per value, the totals on each device"}})
    async def sweep_endpoint(request: SweepRequest) -> Response:
        model = _request_model(request, uploads)
        devices = [_catalogue_device(name) for name in request.hardware]
        points = []
        for value in request.values:
            workload = _workload(request, **{request.vary: value})
            points.append({request.vary: value, "totals": [analyze(model, d, workload).totals.to_dict()
                                                           for d in devices]})
        return _json({"vary": request.vary, "hardware": request.hardware, "points": points})

    @app.post("/api/models/parse", summary="parse an uploaded config.json, sent as the raw request body",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"type": "object", "description": "a Hugging Face config.json"}}}}},
              responses={200: {"description": "`model`: the structure read; `config`: the parsed JSON, to send "
                                              "back as `config` in /api/analyze"},
                         413: {"description": f"body over {MAX_BODY_BYTES} bytes"}})
    async def parse_model(request: Request, name: Annotated[str, Query(max_length=100)] = "uploaded") -> Response:
        body = await request.body()  # in memory, capped by BodySizeLimit; never written anywhere
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{name}: not a text file (expected a config.json)") from None
        except json.JSONDecodeError as err:
            raise InputError(f"{name}: not valid JSON: {err}") from None
        except RecursionError:
            raise InputError(f"{name}: nested too deeply to be a config.json") from None
        if not isinstance(data, dict):
            raise InputError(f"{name}: expected a JSON object (a Hugging Face config.json)")
        spec = parse_config(data, name)
        return _json({"model": spec.to_dict() | {"params": spec.params}, "config": data})

    @app.post(GGUF_PATH, summary="read a model from the start of a GGUF file, sent as the raw request body",
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary",
                             "description": "the file's first bytes: its header, at least"}}}}},
              responses={200: {"description": "`gguf`: the key to send as `gguf` in /api/analyze; `model`: the "
                                              "structure read; `file`: the formats and bytes of its tensors"},
                         413: {"description": f"body over {MAX_GGUF_HEADER_BYTES} bytes"}})
    async def parse_gguf(request: Request, size: Annotated[int, Query(ge=1, le=MAX_GGUF_FILE_BYTES)],
                         name: Annotated[str, Query(max_length=100)] = "uploaded.gguf") -> Response:
        body = await request.body()  # in memory, capped by BodySizeLimit; never written anywhere
        key, read = uploads.add(body, size, name)
        file = read.to_dict()
        del file["path"], file["model"]
        return _json({"gguf": key, "model": read.model.to_dict() | {"params": read.model.params}, "file": file})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES, limits={GGUF_PATH: MAX_GGUF_HEADER_BYTES})
    return app
