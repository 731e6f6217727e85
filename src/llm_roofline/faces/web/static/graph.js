// The model as a picture: a dataflow graph of one step's operators, layer kind by layer kind, as SVG.
// The structure comes from the server (graph.layer_graph in Python): sections of nodes, each node an
// operator of the analysis placed at a dataflow stage (column) and lane (row); this file only lays it out
// for the container's width and paints each node by its operator's figures in one device's payload
// (charts.analysis_payload): colour by bound, shade by share of the step's time. Needs charts.js first.
"use strict";
(function (global) {
  const {el, html, si, seconds, percent, tooltipFor, hoverable} = global.RooflineCharts;
  const BOUND_COLORS = {memory: "#1f5fbf", compute: "#b3261e"};
  const UNKNOWN_COLOR = "#7f7f7f";
  const SECTION_CHROME = 18; // a section's padding and border (graph.css): its drawing is this much narrower
  let drawings = 0; // makes each drawing's marker ids unique on a page with several graphs

  function geometry(width) {
    const narrow = width < 600;
    const nodeW = narrow ? 84 : 100;
    const colGap = narrow ? 22 : 24;
    const pad = colGap / 2 + 8; // room beside the outer columns for the edges that wrap to the next band
    const perBand = Math.max(1, Math.floor((width - 2 * pad + colGap) / (nodeW + colGap)));
    return {width, nodeW, colGap, pad, perBand, nodeH: 34, laneGap: 10, railGap: 18, bandGap: 28,
            pitch: nodeW + colGap, fontSize: narrow ? 10.5 : 11.5};
  }

  // Where a section's columns wrap: the fewest bands of at most `perBand` columns, then the breaks that the
  // fewest edges cross, an edge costing more the further back its source is (it runs to the band's end and
  // back): so a layer wraps after its first residual add rather than between o_proj and the add.
  function bandStarts(section, columns, perBand) {
    const column = new Map(section.nodes.map((node) => [node.id, node.column]));
    const crossing = (at) => section.edges.reduce((cost, edge) => {
      const from = column.get(edge.from);
      const to = column.get(edge.to);
      return from < at && to >= at ? cost + 1 + 0.5 * (at - 1 - from) : cost;
    }, 0);
    const best = [{bands: 0, cost: 0, starts: []}];
    for (let end = 1; end <= columns; end++) {
      let choice = null;
      for (let start = Math.max(0, end - perBand); start < end; start++) {
        const before = best[start];
        const candidate = {bands: before.bands + 1, cost: before.cost + (start > 0 ? crossing(start) : 0),
                           starts: [...before.starts, start]};
        if (!choice || candidate.bands < choice.bands ||
            (candidate.bands === choice.bands && candidate.cost < choice.cost)) choice = candidate;
      }
      best.push(choice);
    }
    return best[columns].starts;
  }

  // Where every node of a section goes: its columns split into bands that fit the width, stacked.
  function layout(section, geo) {
    const columns = 1 + Math.max(0, ...section.nodes.map((n) => n.column));
    const starts = bandStarts(section, columns, geo.perBand);
    const bandOf = (col) => starts.filter((start) => start <= col).length - 1;
    const residual = section.edges.some((e) => e.kind === "residual");
    const railGap = residual ? geo.railGap : 6;
    // Each band keeps only the lanes it uses, in their order (a lane that carries nodes elsewhere is no gap here).
    const used = starts.map(() => new Set());
    for (const node of section.nodes) used[bandOf(node.column)].add(node.row);
    const laneOf = used.map((rows) => new Map([...rows].sort((a, b) => a - b).map((row, i) => [row, i])));
    const lanes = used.map((rows) => Math.max(1, rows.size));
    const bandInfo = [];
    let top = 2;
    starts.forEach((start, band) => {
      const count = (band + 1 < starts.length ? starts[band + 1] : columns) - start;
      const lanesTop = top + railGap;
      const bottom = lanesTop + lanes[band] * (geo.nodeH + geo.laneGap) - geo.laneGap;
      bandInfo.push({start, rail: top + railGap / 2 - 2, lanesTop, bottom,
                     right: geo.pad + count * geo.pitch - geo.colGap});
      top = bottom + geo.bandGap;
    });
    const boxes = new Map();
    for (const node of section.nodes) {
      const band = bandOf(node.column);
      const info = bandInfo[band];
      const lane = laneOf[band].get(node.row);
      boxes.set(node.id, {node, band, lane, x: geo.pad + (node.column - info.start) * geo.pitch,
                          y: info.lanesTop + lane * (geo.nodeH + geo.laneGap)});
    }
    return {boxes, bands: bandInfo, height: bandInfo[bandInfo.length - 1].bottom + 8};
  }

  // A polyline with rounded corners.
  function roundedPath(points, radius) {
    const pts = points.filter((p, i) => i === 0 || p[0] !== points[i - 1][0] || p[1] !== points[i - 1][1]);
    let d = `M${pts[0][0]},${pts[0][1]}`;
    for (let i = 1; i < pts.length - 1; i++) {
      const [px, py] = pts[i - 1];
      const [cx, cy] = pts[i];
      const [nx, ny] = pts[i + 1];
      const r = Math.min(radius, Math.hypot(cx - px, cy - py) / 2, Math.hypot(nx - cx, ny - cy) / 2);
      const inLen = Math.hypot(cx - px, cy - py) || 1;
      const outLen = Math.hypot(nx - cx, ny - cy) || 1;
      d += `L${cx - ((cx - px) / inLen) * r},${cy - ((cy - py) / inLen) * r}`;
      d += `Q${cx},${cy} ${cx + ((nx - cx) / outLen) * r},${cy + ((ny - cy) / outLen) * r}`;
    }
    const last = pts[pts.length - 1];
    return d + `L${last[0]},${last[1]}`;
  }

  // Data edges run right out of a node and into the left of the next, turning only in the gaps between
  // columns, lanes and bands, so that no line crosses a node; residual edges run along the rail above a band.
  function edgePoints(edge, from, to, plan, geo, boxes) {
    const half = geo.nodeH / 2;
    if (edge.kind === "residual") {
      const ax = from.x + geo.nodeW / 2;
      const bx = to.x + geo.nodeW / 2;
      const railA = plan.bands[from.band].rail;
      if (from.band === to.band) return [[ax, from.y], [ax, railA], [bx, railA], [bx, to.y]];
      const right = plan.bands[from.band].right + geo.colGap / 2 + 3;
      const left = geo.pad - geo.colGap / 2 - 3;
      const gap = plan.bands[from.band].bottom + geo.bandGap * 0.7;
      const railB = plan.bands[to.band].rail;
      return [[ax, from.y], [ax, railA], [right, railA], [right, gap], [left, gap], [left, railB], [bx, railB],
              [bx, to.y]];
    }
    const start = [from.x + geo.nodeW, from.y + half];
    const end = [to.x, to.y + half];
    const fromColumn = from.node.column;
    const toColumn = to.node.column;
    if (from.band === to.band && toColumn === fromColumn + 1) {
      const mid = start[0] + geo.colGap / 2;
      return [start, [mid, start[1]], [mid, end[1]], end];
    }
    const depart = start[0] + geo.colGap / 2 - 3;
    const arrive = end[0] - geo.colGap / 2 + 3;
    let gutter;
    if (from.band !== to.band) {
      gutter = plan.bands[from.band].bottom + geo.bandGap * 0.4;
    } else {
      const blocked = Array.from(boxes.values()).some((b) => b.band === from.band && b.lane === from.lane &&
        b.node.column > fromColumn && b.node.column < toColumn);
      if (from.lane === to.lane && !blocked) return [start, end];
      gutter = to.lane > from.lane ? to.y - geo.laneGap / 2 : to.y + geo.nodeH + geo.laneGap / 2;
    }
    return [start, [depart, start[1]], [depart, gutter], [arrive, gutter], [arrive, end[1]], end];
  }

  function opIndex(result) {
    const index = new Map();
    for (const op of (result && result.ops) || []) index.set(op.name, op);
    return index;
  }

  // The share of the step's time a node stands for: its operator's share, over the instances in its section.
  function nodeShare(node, op) {
    if (!op || !op.time_share) return 0;
    const instances = node.instances || op.count;
    return op.time_share * Math.min(1, instances / (op.count || 1));
  }

  function fitLabel(text, geo) {
    const room = geo.nodeW - 10;
    let size = geo.fontSize;
    const width = (s) => 0.56 * s * text.length;
    while (size > 9 && width(size) > room) size -= 0.5;
    let shown = text;
    while (shown.length > 3 && 0.56 * size * shown.length > room) shown = shown.slice(0, -2) + "…";
    return {text: shown, size};
  }

  function nodeRows(node, op, share, result) {
    if (!op) return [["operator", node.op], ["figures", "not in this analysis"]];
    const instances = node.instances || op.count;
    const rows = [["operator", op.name], ["bound", op.bound]];
    rows.push(["share of step", percent(share) + (instances < op.count
      ? ` (${percent(op.time_share)} over all ${op.count})` : "")]);
    rows.push(["time", `${seconds(op.time_s)} × ${instances}`]);
    rows.push(["FLOPs", si(op.flops, "FLOP") + " each"], ["bytes", si(op.bytes, "B") + " each"]);
    rows.push(["intensity", op.arithmetic_intensity === null ? "∞ (no bytes moved)"
      : `${+op.arithmetic_intensity.toPrecision(3)} FLOP/B`]);
    rows.push(["attainable", si(op.attainable_flops_per_s, "FLOP/s")]);
    if (result && result.hardware) rows.push(["device", result.hardware.display_name]);
    return rows;
  }

  function drawSection(section, geo, ops, maxShare, tooltip, activate, result) {
    const plan = layout(section, geo);
    const id = `graph-arrow-${++drawings}`;
    const svg = el("svg", {class: "graph-svg", viewBox: `0 0 ${geo.width} ${plan.height}`, width: "100%",
                           role: "group", "aria-label": section.title, "data-section": section.id});
    const defs = el("defs", {}, svg);
    const marker = el("marker", {id, viewBox: "0 0 8 8", refX: 7.5, refY: 4, markerWidth: 7, markerHeight: 7,
                                 markerUnits: "userSpaceOnUse", orient: "auto"}, defs);
    el("path", {d: "M0,0.5L8,4L0,7.5z", class: "graph-arrowhead"}, marker);

    const edges = el("g", {class: "graph-edges"}, svg);
    for (const edge of section.edges) {
      const from = plan.boxes.get(edge.from);
      const to = plan.boxes.get(edge.to);
      if (!from || !to) continue;
      el("path", {class: `graph-edge ${edge.kind}`, d: roundedPath(edgePoints(edge, from, to, plan, geo, plan.boxes), 5),
                  "marker-end": `url(#${id})`, "data-from": edge.from, "data-to": edge.to}, edges);
    }

    const layer = el("g", {class: "graph-nodes"}, svg);
    for (const {node, x, y} of plan.boxes.values()) {
      const op = ops.get(node.op);
      const share = nodeShare(node, op);
      const bound = op ? op.bound : "unknown";
      const alpha = op ? 0.1 + 0.9 * Math.sqrt(maxShare > 0 ? share / maxShare : 0) : 0.15;
      const color = BOUND_COLORS[bound] || UNKNOWN_COLOR;
      const group = el("g", {class: `graph-node bound-${bound}${alpha > 0.5 ? " dark" : ""}`, "data-op": node.op,
                             "data-node": node.id, transform: `translate(${x},${y})`}, layer);
      el("rect", {class: "graph-box", width: geo.nodeW, height: geo.nodeH, rx: 6, ry: 6, fill: color,
                  "fill-opacity": alpha.toFixed(3), stroke: color}, group);
      const label = fitLabel(node.label, geo);
      const text = el("text", {class: "graph-label", x: geo.nodeW / 2, y: 14.5, "text-anchor": "middle",
                               "font-size": label.size}, group);
      text.textContent = label.text;
      el("text", {class: "graph-share", x: geo.nodeW / 2, y: 27.5, "text-anchor": "middle"}, group).textContent =
        op ? (share >= 0.001 ? percent(share) : "<0.1%") : "";
      const rows = nodeRows(node, op, share, result);
      hoverable(group, tooltip, node.label, rows);
      group.setAttribute("role", "button");
      group.setAttribute("aria-label", `${node.label}: ${node.op}` +
        (op ? `, ${op.bound}-bound, ${percent(share)} of the step` : ""));
      const light = (on) => {
        for (const path of edges.querySelectorAll(".graph-edge")) {
          if (path.getAttribute("data-from") === node.id || path.getAttribute("data-to") === node.id) {
            path.classList.toggle("lit", on);
          }
        }
      };
      group.addEventListener("mouseenter", () => light(true));
      group.addEventListener("mouseleave", () => light(false));
      group.addEventListener("focus", () => light(true));
      group.addEventListener("blur", () => light(false));
      group.addEventListener("click", () => activate(node.op));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          activate(node.op);
        }
      });
    }
    return svg;
  }

  function legend() {
    const node = html("div", {class: "graph-legend"});
    const item = (swatchClass, text) => {
      const entry = html("span", {class: "graph-legend-item"});
      entry.append(html("span", {class: `graph-swatch ${swatchClass}`}), text);
      node.appendChild(entry);
    };
    item("memory", "memory-bound");
    item("compute", "compute-bound");
    item("shade", "darker: larger share of the step's time");
    item("residual", "residual (skip) connection");
    return node;
  }

  // Draw `graph` (layer_graph's JSON) into `container`, painted with `result` (one device's analysis payload).
  // options: width (default: the container's), onSelect(opName) (called on click, Enter or Space).
  function draw(container, graph, result, options) {
    options = options || {};
    const width = Math.max(300, Math.floor(options.width || container.clientWidth || 720));
    const geo = geometry(width - SECTION_CHROME);
    const ops = opIndex(result);
    const sections = graph.sections || [];
    let maxShare = 0;
    for (const section of sections) {
      for (const node of section.nodes) maxShare = Math.max(maxShare, nodeShare(node, ops.get(node.op)));
    }
    container.replaceChildren();
    container.classList.add("graph");
    const tooltip = tooltipFor(container);
    const activate = (opName) => {
      select(container, opName);
      if (options.onSelect) options.onSelect(opName);
    };
    container.appendChild(legend());
    for (const section of sections) {
      const box = html("section", {class: `graph-section${section.repeat > 1 ? " repeated" : ""}`,
                                   "data-section": section.id});
      const head = html("div", {class: "graph-section-head"});
      const repeat = section.repeat > 1 ? `${section.repeat} ×` : "";
      let title = section.title;
      if (repeat && title.startsWith(repeat + " ")) title = title.slice(repeat.length + 1);
      const heading = html("span", {class: "graph-title"});
      if (repeat) heading.append(html("strong", {class: "graph-repeat"}, repeat), " ");
      heading.append(title);
      head.appendChild(heading);
      const share = section.nodes.reduce((total, node) => total + nodeShare(node, ops.get(node.op)), 0);
      if (ops.size) {
        head.appendChild(html("span", {class: "graph-section-share"},
                              `${share >= 0.001 ? percent(share) : "<0.1%"} of the step`));
      }
      box.appendChild(head);
      box.appendChild(drawSection(section, geo, ops, maxShare, tooltip, activate, result));
      container.appendChild(box);
    }
    const selected = container.getAttribute("data-selected");
    if (selected) select(container, selected);
    watchWidth(container, graph, result, options, width);
    return container;
  }

  // Redraw when the container's width changes enough to change the layout (a rotated phone, a resized window).
  function watchWidth(container, graph, result, options, width) {
    if (options.width || typeof ResizeObserver === "undefined") return;
    if (container.rooflineGraphObserver) container.rooflineGraphObserver.disconnect();
    let pending = null;
    const observer = new ResizeObserver(() => {
      const now = container.clientWidth;
      if (!now || Math.abs(now - width) < 24) return;
      clearTimeout(pending);
      pending = setTimeout(() => draw(container, graph, result, options), 120);
    });
    observer.observe(container);
    container.rooflineGraphObserver = observer;
  }

  // Mark the node(s) of `opName` (an operator shared by several kinds of layer has one in each); null clears.
  function select(container, opName) {
    for (const node of container.querySelectorAll(".graph-node.selected")) {
      node.classList.remove("selected");
      node.removeAttribute("aria-pressed");
    }
    if (!opName) {
      container.removeAttribute("data-selected");
      return [];
    }
    container.setAttribute("data-selected", opName);
    const found = Array.from(container.querySelectorAll(".graph-node")).filter(
      (node) => node.getAttribute("data-op") === opName);
    for (const node of found) {
      node.classList.add("selected");
      node.setAttribute("aria-pressed", "true");
    }
    return found;
  }

  global.RooflineGraph = {draw, select};
})(window);
