// The page: controls -> POST /api/analyze -> charts and tables (drawn by charts.js).
"use strict";
(function () {
  const UPLOADED = "__uploaded__";
  const STORED = "";  // the weights option "the model's own": fp16 for a config.json, a GGUF file's formats
  // The API's defaults (AnalyzeRequest), which are the command line's and Workload's.
  const DEFAULTS = {model: "llama-2-7b", hardware: ["jetson-orin-nx"], weights: STORED, activations: "fp16"};
  const $ = (id) => document.getElementById(id);
  const state = {config: null, gguf: null, limits: null, controller: null, timer: null, results: [], updates: 0};

  function errorMessage(status, body) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).filter((part) => part !== "body").join(".")}: ${d.msg}`)
        .join("; ");
    }
    return `the server answered HTTP ${status}`;
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(errorMessage(response.status, body));
    return body;
  }

  function showError(message) {
    $("error").textContent = message || "";
  }

  function option(value, text, selected) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = text;
    node.selected = Boolean(selected);
    return node;
  }

  function fillCatalogue(catalogue) {
    state.limits = catalogue.limits;
    $("model").replaceChildren(...catalogue.models.map((m) => option(
      m.name, `${m.display_name} (${RooflineCharts.si(m.params, "", 3)} params)`, m.name === DEFAULTS.model)));
    $("hardware").replaceChildren(...catalogue.hardware.map((d) => option(
      d.name, d.display_name, DEFAULTS.hardware.includes(d.name))));
    for (const id of ["weights", "activations"]) {
      $(id).replaceChildren(...catalogue.formats.map((f) => option(f, f, f === DEFAULTS[id])));
    }
    $("weights").prepend(option(STORED, "the model's own (fp16 for a config.json, a GGUF file's formats)",
      DEFAULTS.weights === STORED));
    $("kv_cache").append(...catalogue.formats.map((f) => option(f, f, false)));
    $("upload-hint").textContent =
      `read in memory by the server, never stored; a config.json of at most ` +
      `${RooflineCharts.si(state.limits.max_body_bytes, "B")}; of a GGUF file only its header is sent`;
  }

  function requestBody() {
    const body = {
      hardware: Array.from($("hardware").selectedOptions, (o) => o.value),
      phase: $("phase").value,
      batch: Number($("batch").value),
      seq_len: Number($("seq_len").value),
      weights: $("weights").value === STORED ? null : $("weights").value,
      activations: $("activations").value,
      kv_cache: $("kv_cache").value || null,
      flash_attention: $("flash_attention").checked,
      fuse: $("fuse").checked ? "elementwise" : "none",
      sparsity: $("sparsity").checked ? "2:4" : "none",
    };
    if ($("model").value !== UPLOADED) body.model = $("model").value;
    else if (state.gguf) body.gguf = state.gguf;
    else body.config = state.config;
    return body;
  }

  function render(results) {
    state.results = results;
    const first = results[0];
    $("headline").textContent = `Roofline: ${first.label.model} — ${first.label.workload}`;
    $("warnings").textContent = first.warnings.map((text) => `Warning: ${text}`).join(" ");
    RooflineCharts.rooflineChart($("roofline-chart"), results);
    RooflineCharts.totalsTable($("totals"), results);
    RooflineCharts.breakdownChart($("breakdown-chart"), results);
    const chosen = $("table-device").value;
    $("table-device").replaceChildren(...results.map((r, i) => option(String(i), r.hardware.display_name,
                                                                         r.hardware.name === chosen)));
    const index = results.findIndex((r) => r.hardware.name === chosen);
    $("table-device").value = String(Math.max(index, 0));
    renderTable();
  }

  function renderTable() {
    const result = state.results[Number($("table-device").value)];
    if (result) RooflineCharts.opTable($("ops"), result);
  }

  async function update() {
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    const started = performance.now();
    $("status").textContent = "analyzing…";
    try {
      const data = await api("/api/analyze", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(requestBody()),
        signal: state.controller.signal,
      });
      render(data.results);
      showError("");
      state.updates += 1;
      document.body.dataset.updates = String(state.updates);
      $("status").textContent = `updated in ${Math.round(performance.now() - started)} ms`;
    } catch (err) {
      if (err.name === "AbortError") return;
      showError(err.message);
      $("status").textContent = "";
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(update, 80);
  }

  // A GGUF file: only its start (the header: metadata and tensor table) is sent, with the file's size.
  async function uploadGGUF(file, name) {
    const head = file.slice(0, Math.min(file.size, state.limits.max_gguf_header_bytes));
    const data = await api(`/api/models/gguf?name=${encodeURIComponent(name)}&size=${file.size}`, {
      method: "POST", headers: {"Content-Type": "application/octet-stream"}, body: head,
    });
    return {gguf: data.gguf, config: null, model: data.model, label: `, ${data.file.file_type}`};
  }

  async function uploadConfig(file, name) {
    if (file.size > state.limits.max_body_bytes) {
      throw new Error(`${name}: ${file.size} bytes is over the upload limit of ${state.limits.max_body_bytes} bytes`);
    }
    const data = await api(`/api/models/parse?name=${encodeURIComponent(name)}`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: file,
    });
    return {gguf: null, config: data.config, model: data.model, label: ""};
  }

  async function upload() {
    const file = $("upload").files[0];
    if (!file) return;
    const name = file.name.slice(0, 100);
    try {
      const isGGUF = name.toLowerCase().endsWith(".gguf");
      const read = await (isGGUF ? uploadGGUF : uploadConfig)(file, name);
      state.config = read.config;
      state.gguf = read.gguf;
      $("model").querySelector(`option[value="${UPLOADED}"]`)?.remove();
      $("model").prepend(option(UPLOADED, `uploaded: ${name} (${RooflineCharts.si(read.model.params, "", 3)} ` +
                                          `params${read.label})`, true));
      $("model").value = UPLOADED;
      if (isGGUF) $("weights").value = STORED;  // the file's own formats, until another is chosen
      showError("");
      await update();
    } catch (err) {
      const reason = err.message.startsWith(`${name}: `) ? err.message.slice(name.length + 2) : err.message;
      showError(`Could not use ${name}: ${reason}`);
    } finally {
      $("upload").value = "";
    }
  }

  async function start() {
    try {
      fillCatalogue(await api("/api/catalogue"));
    } catch (err) {
      showError(`Could not load the catalogue: ${err.message}`);
      return;
    }
    $("controls").addEventListener("submit", (event) => event.preventDefault());
    for (const id of ["model", "hardware", "phase", "batch", "seq_len", "weights", "activations", "kv_cache",
                      "flash_attention", "fuse", "sparsity"]) {
      $(id).addEventListener(id === "batch" || id === "seq_len" ? "input" : "change", schedule);
    }
    $("upload").addEventListener("change", upload);
    $("table-device").addEventListener("change", renderTable);
    window.addEventListener("resize", () => state.results.length && render(state.results));
    await update();
  }

  start();
})();
