// The page: controls -> the JSON API -> advice, charts and tables (drawn by charts.js, graph.js, explore.js).
// Every figure shown comes from the server; this file only asks, places and links them. The page's state
// lives in its address (query string), so a link or a reload shows the same view.
"use strict";
(function () {
  const UPLOADED = "__uploaded__";
  const STORED = "";  // the weights option "the model's own": fp16 for a config.json, a GGUF file's formats
  // The API's defaults (AnalyzeRequest), which are the command line's and Workload's; the page's own for the rest.
  const DEFAULTS = {model: "llama-2-7b", hardware: ["jetson-orin-nx"], phase: "decode", batch: "1", seq_len: "1024",
                    weights: STORED, activations: "fp16", kv_cache: "", flash_attention: false, fuse: false,
                    sparsity: false, target_ms: "50", steps: "512", tab: "roofline", "heat-value": "tokens_per_s",
                    engine: ""};
  // Controls kept in the address: value controls, check boxes, and the multi-select of devices.
  const VALUES = ["model", "phase", "batch", "seq_len", "weights", "activations", "kv_cache", "engine", "target_ms",
                  "steps", "heat-value"];
  const CHECKS = ["flash_attention", "fuse", "sparsity"];
  const TABS = ["roofline", "explore", "timeline"];
  const $ = (id) => document.getElementById(id);
  const state = {config: null, gguf: null, limits: null, results: [], graph: null, op: null, tab: "roofline",
                 controllers: {}, timer: null, counters: {}, restoring: false};

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

  // One request per kind in flight: a newer one aborts the older (typing a length sends one, not ten).
  async function post(kind, path, body) {
    if (state.controllers[kind]) state.controllers[kind].abort();
    const controller = new AbortController();
    state.controllers[kind] = controller;
    return api(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
                      signal: controller.signal});
  }

  // Tests wait on these: body[data-updates], [data-advice], [data-explore], [data-timeline] count the renders.
  function counted(kind) {
    state.counters[kind] = (state.counters[kind] || 0) + 1;
    document.body.dataset[kind] = String(state.counters[kind]);
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
    const mixes = document.createElement("optgroup");
    mixes.label = "llama.cpp mixes";
    mixes.append(...(catalogue.mixes || []).map((m) => option(m, m, false)));
    $("weights").append(mixes);
    const recipes = document.createElement("optgroup");
    recipes.label = "other engines' recipes";
    recipes.append(...(catalogue.recipes || []).map((m) => option(m, m, false)));
    $("weights").append(recipes);
    $("kv_cache").append(...catalogue.formats.map((f) => option(f, f, false)));
    $("engine").append(...(catalogue.engines || []).map((e) => {
      const node = option(e.name, `${e.name} (${e.kinds.join("/")})`, false);
      node.title = e.description;
      return node;
    }));
    $("upload-hint").textContent =
      `read in memory by the server, never stored; a config.json of at most ` +
      `${RooflineCharts.si(state.limits.max_body_bytes, "B")}; of a GGUF file only its header is sent`;
  }

  // --- the address: the controls' values that differ from the defaults ------------------------------

  function focusDevice() {
    const result = state.results[Number($("table-device").value)] || state.results[0];
    return result ? result.hardware.name : null;
  }

  function writeAddress() {
    if (state.restoring) return;
    const params = new URLSearchParams();
    if ($("model").value !== UPLOADED && $("model").value !== DEFAULTS.model) params.set("model", $("model").value);
    const devices = Array.from($("hardware").selectedOptions, (o) => o.value);
    if (devices.join(",") !== DEFAULTS.hardware.join(",")) params.set("hardware", devices.join(","));
    for (const id of VALUES) {
      if (id === "model") continue;
      if ($(id).value !== DEFAULTS[id]) params.set(id, $(id).value);
    }
    for (const id of CHECKS) if ($(id).checked) params.set(id, "1");
    if (state.tab !== DEFAULTS.tab) params.set("tab", state.tab);
    const device = focusDevice();
    if (device && devices.length > 1 && device !== devices[0]) params.set("device", device);
    if (state.op) params.set("op", state.op);
    const query = params.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }

  function selectIfOffered(select, value) {
    if (Array.from(select.options).some((o) => o.value === value)) select.value = value;
  }

  // The controls from the address (unknown values are ignored: the defaults stay).
  function readAddress() {
    const params = new URLSearchParams(location.search);
    for (const id of VALUES) {
      if (!params.has(id)) continue;
      if ($(id).tagName === "SELECT") selectIfOffered($(id), params.get(id));
      else $(id).value = params.get(id);
    }
    for (const id of CHECKS) $(id).checked = params.get(id) === "1";
    if (params.has("hardware")) {
      const wanted = params.get("hardware").split(",").slice(0, state.limits.max_devices);
      const known = Array.from($("hardware").options, (o) => o.value);
      if (wanted.some((name) => known.includes(name))) {
        for (const node of $("hardware").options) node.selected = wanted.includes(node.value);
      }
    }
    state.wantedDevice = params.get("device");
    state.op = params.get("op");
    state.tab = TABS.includes(params.get("tab")) ? params.get("tab") : DEFAULTS.tab;
  }

  // --- requests -----------------------------------------------------------------------------------

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
      engine: $("engine").value || null,
    };
    if ($("model").value !== UPLOADED) body.model = $("model").value;
    else if (state.gguf) body.gguf = state.gguf;
    else body.config = state.config;
    return body;
  }

  function focusBody(extra) {
    return Object.assign(requestBody(), {hardware: [focusDevice() || DEFAULTS.hardware[0]]}, extra);
  }

  // --- drawing ------------------------------------------------------------------------------------

  function focusResult() {
    return state.results[Number($("table-device").value)] || state.results[0];
  }

  function render() {
    const results = state.results;
    const first = results[0];
    $("headline").textContent = `${first.label.model} — ${first.label.workload}`;
    $("warnings").textContent = first.warnings.map((text) => `Warning: ${text}`).join(" ");
    const chosen = state.wantedDevice || focusDevice();
    state.wantedDevice = null;
    $("table-device").replaceChildren(...results.map((r, i) => option(String(i), r.hardware.display_name,
                                                                         r.hardware.name === chosen)));
    const index = results.findIndex((r) => r.hardware.name === chosen);
    $("table-device").value = String(Math.max(index, 0));
    drawCharts();
  }

  function drawCharts() {
    const results = state.results;
    if (!results.length) return;
    RooflineCharts.rooflineChart($("roofline-chart"), results);
    RooflineCharts.totalsTable($("totals"), results);
    const several = results.length > 1;
    $("ranking-panel").hidden = !several;
    $("breakdown-panel").hidden = several;  // one device: where its time goes; several: the ranking says more
    if (several) RooflineCharts.rankingChart($("ranking-chart"), results);
    else RooflineCharts.breakdownChart($("breakdown-chart"), results);
    drawFocus();
  }

  // What belongs to the chosen device: the graph and the table, and the chosen operator on all three.
  function drawFocus() {
    const result = focusResult();
    if (!result) return;
    $("ops-title").textContent = `Operators on ${result.hardware.display_name}`;
    RooflineCharts.opTable($("ops"), result);
    if (window.RooflineGraph && state.graph) {
      RooflineGraph.draw($("graph"), state.graph, result, {onSelect: selectOp});
    }
    if (state.op && !result.ops.some((op) => op.name === state.op)) state.op = null;
    markSelection(false);
  }

  function markSelection(scroll) {
    const name = state.op;
    const device = focusDevice();
    RooflineCharts.markOperator($("roofline-chart"), device, name);
    if (window.RooflineGraph && state.graph) RooflineGraph.select($("graph"), name);
    for (const row of $("ops").querySelectorAll("tr.selected")) row.classList.remove("selected");
    const row = name ? $("ops").querySelector(`tr[data-op="${CSS.escape(name)}"]`) : null;
    if (row) {
      row.classList.add("selected");
      if (scroll) {  // within the table's own scroll box, not the page
        const box = $("ops");
        box.scrollTop = row.offsetTop - box.clientHeight / 2;
      }
    }
  }

  function selectOp(name) {
    state.op = state.op === name ? null : name;
    markSelection(true);
    writeAddress();
  }

  async function updateAdvice() {
    const target = $("target_ms").value.trim();
    try {
      const advice = await post("advice", "/api/advice", focusBody({target_ms: target === "" ? null : Number(target)}));
      RooflineCharts.adviceBlock($("advice"), advice);
      counted("advice");
    } catch (err) {
      if (err.name === "AbortError") return;
      $("advice").replaceChildren(Object.assign(document.createElement("p"), {
        className: "advice-why", textContent: `No advice: ${err.message}`}));
      counted("advice");
    }
  }

  async function updateTab() {
    const panel = {explore: $("heatmap"), timeline: $("timeline")}[state.tab];
    if (!panel) return;
    try {
      if (state.tab === "explore") {
        const data = await post("explore", "/api/explore", focusBody({}));
        if (window.RooflineExplore) RooflineExplore.heatmap(panel, data, {value: $("heat-value").value});
        state.explore = data;
      } else {
        const data = await post("timeline", "/api/timeline", focusBody({steps: Number($("steps").value)}));
        if (window.RooflineExplore) RooflineExplore.timeline(panel, data, {});
        state.timeline = data;
      }
      counted(state.tab);
    } catch (err) {
      if (err.name === "AbortError") return;
      panel.replaceChildren(Object.assign(document.createElement("p"), {className: "error", textContent: err.message}));
      counted(state.tab);
    }
  }

  async function update() {
    const started = performance.now();
    $("status").textContent = "analyzing…";
    writeAddress();
    try {
      const data = await post("analyze", "/api/analyze", requestBody());
      state.results = data.results;
      state.graph = data.graph || null;
      render();
      showError("");
      counted("updates");
      $("status").textContent = `updated in ${Math.round(performance.now() - started)} ms`;
    } catch (err) {
      if (err.name === "AbortError") return;
      showError(err.message);
      $("status").textContent = "";
      return;
    }
    writeAddress();
    updateAdvice();
    updateTab();
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(update, 80);
  }

  function showTab(name, focus) {
    state.tab = name;
    for (const tab of TABS) {
      const button = $(`tab-${tab}`);
      const selected = tab === name;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      $(`panel-${tab}`).hidden = !selected;
      if (selected && focus) button.focus();
    }
    writeAddress();
    if (name === "roofline") drawCharts();  // drawn at the width it has now that it shows
    else if (state.results.length) updateTab();
  }

  // --- uploads: a GGUF file's header, or a config.json ----------------------------------------------

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

  // --- wiring ---------------------------------------------------------------------------------------

  function wire() {
    $("controls").addEventListener("submit", (event) => event.preventDefault());
    for (const id of ["model", "hardware", "phase", "batch", "seq_len", "weights", "activations", "kv_cache",
                      "flash_attention", "fuse", "sparsity", "engine"]) {
      $(id).addEventListener(id === "batch" || id === "seq_len" ? "input" : "change", schedule);
    }
    $("target_ms").addEventListener("input", () => {
      writeAddress();
      clearTimeout(state.adviceTimer);
      state.adviceTimer = setTimeout(updateAdvice, 120);
    });
    $("steps").addEventListener("input", () => {
      writeAddress();
      clearTimeout(state.tabTimer);
      state.tabTimer = setTimeout(updateTab, 120);
    });
    $("heat-value").addEventListener("change", () => {
      writeAddress();
      if (state.explore && window.RooflineExplore) {
        RooflineExplore.heatmap($("heatmap"), state.explore, {value: $("heat-value").value});
      }
    });
    $("upload").addEventListener("change", upload);
    $("table-device").addEventListener("change", () => {
      drawFocus();
      writeAddress();
      updateAdvice();
      updateTab();
    });
    TABS.forEach((name, i) => {
      const button = $(`tab-${name}`);
      button.addEventListener("click", () => showTab(name, false));
      button.addEventListener("keydown", (event) => {  // the tab pattern: arrows move between tabs
        const step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
        if (step) {
          event.preventDefault();
          showTab(TABS[(i + step + TABS.length) % TABS.length], true);
        }
      });
    });
    // An operator chosen from the table or the chart, with the mouse or the keyboard.
    $("ops").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-op]");
      if (row) selectOp(row.dataset.op);
    });
    $("roofline-chart").addEventListener("click", (event) => {
      const marker = event.target.closest(".op-point");
      if (marker && marker.dataset.device === focusDevice()) selectOp(marker.dataset.name);
    });
    for (const id of ["ops", "roofline-chart"]) {
      $(id).addEventListener("keydown", (event) => {
        const target = event.target.closest("tr[data-op], .op-point");
        if (!target || (event.key !== "Enter" && event.key !== " ")) return;
        event.preventDefault();
        target.dispatchEvent(new MouseEvent("click", {bubbles: true}));
      });
    }
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => {
        drawCharts();
        if (state.tab === "explore" && state.explore && window.RooflineExplore) {
          RooflineExplore.heatmap($("heatmap"), state.explore, {value: $("heat-value").value});
        } else if (state.tab === "timeline" && state.timeline && window.RooflineExplore) {
          RooflineExplore.timeline($("timeline"), state.timeline, {});
        }
      }, 100);
    });
  }

  async function start() {
    try {
      fillCatalogue(await api("/api/catalogue"));
    } catch (err) {
      showError(`Could not load the catalogue: ${err.message}`);
      return;
    }
    state.restoring = true;
    readAddress();
    showTab(state.tab, false);
    state.restoring = false;
    wire();
    await update();
  }

  start();
})();
