// Charts of llm-roofline analyses, drawn as SVG with hover details. No library, no network.
// Shared by the web page (served from /static/charts.js) and the offline HTML report (inlined).
// The numbers come from the server (charts.analysis_payload in Python): this file only draws them.
"use strict";
(function (global) {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DEVICE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const GROUP_COLORS = {embedding: "#8c564b", attention: "#1f77b4", mixer: "#17becf", ffn: "#ff7f0e",
                        norm: "#2ca02c", residual: "#9467bd", lm_head: "#d62728"};
  const PREFIXES = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

  // The same format as units.si in Python: 3.36e7, "FLOP" -> "33.6 MFLOP".
  function si(value, unit, digits) {
    unit = unit || "";
    digits = digits || 3;
    if (value === null || value === undefined || Number.isNaN(value)) return "-";
    const magnitude = Math.abs(value);
    for (const [scale, prefix] of PREFIXES) {
      if (magnitude >= scale) return (String(+(value / scale).toPrecision(digits)) + " " + prefix + unit).trim();
    }
    return (String(+value.toPrecision(digits)) + " " + unit).trim();
  }

  // The same format as units.seconds in Python: 0.0092 -> "9.2 ms".
  function seconds(value) {
    const magnitude = Math.abs(value);
    for (const [scale, unit] of [[1, "s"], [1e-3, "ms"], [1e-6, "µs"]]) {
      if (magnitude >= scale) return +(value / scale).toPrecision(3) + " " + unit;
    }
    return +(value / 1e-9).toPrecision(3) + " ns";
  }

  function percent(fraction) {
    return (100 * fraction).toFixed(1) + "%";
  }

  function el(name, attributes, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, attributes, text) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One tooltip per chart container: lines of "key: value" shown next to the pointer.
  function tooltipFor(container) {
    let tip = container.querySelector(":scope > .chart-tooltip");
    if (!tip) {
      tip = html("div", {class: "chart-tooltip", role: "tooltip"});
      tip.hidden = true;
      container.appendChild(tip);
    }
    return {
      show(event, title, rows) {
        tip.replaceChildren(html("strong", {}, title));
        for (const [key, value] of rows) {
          const line = html("div");
          line.append(html("span", {class: "key"}, key + " "), html("span", {}, value));
          tip.appendChild(line);
        }
        tip.hidden = false;
        const box = container.getBoundingClientRect();
        const x = event.clientX - box.left + 14;
        const y = event.clientY - box.top + 14;
        tip.style.left = Math.min(x, box.width - tip.offsetWidth - 4) + "px";
        tip.style.top = Math.min(y, box.height - tip.offsetHeight - 4) + "px";
      },
      hide() {
        tip.hidden = true;
      },
    };
  }

  function hoverable(node, tooltip, title, rows) {
    node.setAttribute("tabindex", "0");
    node.setAttribute("aria-label", title);
    node.addEventListener("mouseenter", (event) => tooltip.show(event, title, rows));
    node.addEventListener("mousemove", (event) => tooltip.show(event, title, rows));
    node.addEventListener("mouseleave", () => tooltip.hide());
    node.addEventListener("focus", () => {
      const box = node.getBoundingClientRect();
      tooltip.show({clientX: box.right, clientY: box.bottom}, title, rows);
    });
    node.addEventListener("blur", () => tooltip.hide());
  }

  function logScale(domainLow, domainHigh, rangeLow, rangeHigh) {
    const a = Math.log10(domainLow);
    const b = Math.log10(domainHigh);
    return (value) => rangeLow + ((Math.log10(value) - a) / (b - a)) * (rangeHigh - rangeLow);
  }

  function decades(low, high) {
    const result = [];
    for (let e = Math.round(Math.log10(low)); e <= Math.round(Math.log10(high)); e++) result.push(10 ** e);
    return result;
  }

  function overlapping(a, b) {
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  }

  // Put `text` at the first candidate [x, y, anchor] whose box stays inside `area` and overlaps no box in
  // `taken`; leave it out when none does (the ridge point's hover still gives the figures).
  function placeLabel(parent, text, color, candidates, taken, area) {
    for (const [lx, ly, anchor] of candidates) {
      const node = el("text", {class: "roof-label", x: lx, y: ly, "text-anchor": anchor, fill: color}, parent);
      node.textContent = text;
      const box = node.getBBox();
      const inside = box.x >= area.x && box.y >= area.y && box.x + box.width <= area.x + area.width &&
        box.y + box.height <= area.y + area.height;
      if (inside && !taken.some((other) => overlapping(box, other))) {
        taken.push(box);
        return node;
      }
      node.remove();
    }
    return null;
  }

  function deviceColors(results) {
    const colors = {};
    for (const result of results) {
      if (!(result.hardware.name in colors)) {
        colors[result.hardware.name] = DEVICE_COLORS[Object.keys(colors).length % DEVICE_COLORS.length];
      }
    }
    return colors;
  }

  function opRows(result, op) {
    return [
      ["device", result.hardware.display_name],
      ["phase", result.workload.phase],
      ["count", String(op.count)],
      ["FLOPs", si(op.flops, "FLOP")],
      ["bytes", si(op.bytes, "B")],
      ["intensity", (+op.arithmetic_intensity.toPrecision(3)) + " FLOP/B"],
      ["attainable", si(op.attainable_flops_per_s, "FLOP/s")],
      ["bound", op.bound],
      ["time", seconds(op.time_s) + " × " + op.count],
      ["share of step", percent(op.time_share)],
    ];
  }

  // The roofline of every device in `results` (analysis payloads), with each operator as a point:
  // a circle for prefill, a diamond for decode, area proportional to its share of the step's time.
  function rooflineChart(container, results, options) {
    options = options || {};
    container.replaceChildren();
    container.classList.add("chart");
    const width = options.width || Math.max(container.clientWidth || 0, 640);
    const height = options.height || 460;
    const margin = {left: 104, right: 16, top: 16, bottom: 54};
    const colors = deviceColors(results);
    const devices = [];
    const seen = new Set();
    for (const result of results) {
      if (!seen.has(result.hardware.name)) {
        seen.add(result.hardware.name);
        devices.push(result);
      }
    }
    // A fused elementwise operator moves no bytes: its intensity is null (infinite) and it has no point.
    const points = results.flatMap((r) => r.ops.filter((op) => op.arithmetic_intensity > 0).map((op) => [r, op]));
    const ridges = devices.flatMap((r) => r.ceilings.map((c) => c.ridge_flop_per_byte));
    const peaks = devices.flatMap((r) => r.ceilings.map((c) => c.peak_flops_per_s));
    const intensities = points.map(([, op]) => op.arithmetic_intensity).concat(ridges);
    const attained = points.map(([, op]) => op.attainable_flops_per_s);
    const x0 = 10 ** Math.floor(Math.log10(Math.min(...intensities) / 2));
    const x1 = 10 ** Math.ceil(Math.log10(Math.max(...intensities) * 3));
    const y0 = 10 ** Math.floor(Math.log10(Math.min(...attained, Math.min(...peaks) / 10) / 2));
    const y1 = 10 ** Math.ceil(Math.log10(Math.max(...peaks) * 3));
    const x = logScale(x0, x1, margin.left, width - margin.right);
    const y = logScale(y0, y1, height - margin.bottom, margin.top);

    const svg = el("svg", {class: "roofline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": "roofline chart"});
    const grid = el("g", {class: "grid"}, svg);
    for (const t of decades(x0, x1)) {
      el("line", {x1: x(t), x2: x(t), y1: margin.top, y2: height - margin.bottom}, grid);
      el("text", {x: x(t), y: height - margin.bottom + 16, "text-anchor": "middle", class: "tick"}, grid)
        .textContent = si(t, "");
    }
    for (const t of decades(y0, y1)) {
      el("line", {x1: margin.left, x2: width - margin.right, y1: y(t), y2: y(t)}, grid);
      el("text", {x: margin.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick"}, grid).textContent =
        si(t, "FLOP/s");
    }
    el("text", {x: (margin.left + width - margin.right) / 2, y: height - 10, "text-anchor": "middle",
                class: "axis-label"}, svg).textContent = "arithmetic intensity (FLOP/byte)";
    el("text", {x: 16, y: (margin.top + height - margin.bottom) / 2, "text-anchor": "middle", class: "axis-label",
                transform: `rotate(-90 16 ${(margin.top + height - margin.bottom) / 2})`}, svg)
      .textContent = "attainable performance (FLOP/s)";

    const tooltip = tooltipFor(container);
    const roofs = el("g", {class: "roofs"}, svg);
    for (const result of devices) {
      const hw = result.hardware;
      const color = colors[hw.name];
      const top = result.ceilings[0];
      el("line", {class: "memory", x1: x(x0), y1: y(x0 * hw.memory_bytes_per_s), x2: x(top.ridge_flop_per_byte),
                  y2: y(top.peak_flops_per_s), stroke: color, "data-device": hw.name}, roofs);
      result.ceilings.forEach((ceiling, rank) => {
        el("line", {class: "ceiling" + (rank ? " secondary" : ""), x1: x(ceiling.ridge_flop_per_byte),
                    y1: y(ceiling.peak_flops_per_s), x2: x(x1), y2: y(ceiling.peak_flops_per_s), stroke: color,
                    "data-device": hw.name, "data-precisions": ceiling.label}, roofs);
      });
    }

    const layer = el("g", {class: "ops"}, svg);
    // Operators that land on the same spot (a device's projections in decode, say) share one marker,
    // whose hover lists them all.
    const spots = new Map();
    for (const [result, op] of points) {
      const cx = x(op.arithmetic_intensity);
      const cy = y(op.attainable_flops_per_s);
      const key = `${result.hardware.name}|${result.workload.phase}|${Math.round(cx / 3)}|${Math.round(cy / 3)}`;
      if (!spots.has(key)) spots.set(key, {result, cx, cy, ops: []});
      spots.get(key).ops.push(op);
    }
    const markers = Array.from(spots.values(), (spot) => Object.assign(spot, {
      share: spot.ops.reduce((total, op) => total + op.time_share, 0),
    }));
    // Larger markers first, so that small ones stay on top and can be hovered.
    markers.sort((a, b) => b.share - a.share);
    for (const {result, cx, cy, ops, share} of markers) {
      ops.sort((a, b) => b.time_share - a.time_share);
      const radius = 3 + 17 * Math.sqrt(share);
      const attributes = {class: `op-point ${result.workload.phase}`, fill: colors[result.hardware.name],
                          "data-name": ops[0].name, "data-names": ops.map((op) => op.name).join(" "),
                          "data-device": result.hardware.name, "data-phase": result.workload.phase};
      const half = radius * 1.25;
      const shape = result.workload.phase === "decode"
        ? el("path", Object.assign(attributes, {d: `M${cx},${cy - half}l${half},${half}l${-half},${half}l${-half},${-half}z`}),
             layer)
        : el("circle", Object.assign(attributes, {cx, cy, r: radius}), layer);
      if (ops.length === 1) {
        hoverable(shape, tooltip, ops[0].name, opRows(result, ops[0]));
      } else {
        hoverable(shape, tooltip, `${ops.length} operators, ${percent(share)} of the step`, [
          ["device", result.hardware.display_name],
          ["phase", result.workload.phase],
          ...ops.map((op) => [op.name, `${+op.arithmetic_intensity.toPrecision(3)} FLOP/B, ` +
                                       `${si(op.attainable_flops_per_s, "FLOP/s")}, ${op.bound}-bound, ` +
                                       `${seconds(op.time_s)} × ${op.count} = ${percent(op.time_share)}`]),
        ]);
      }
    }
    container.appendChild(svg);

    // Ridge points on top of everything, then their labels wherever they overlap nothing drawn so far.
    const labels = el("g", {class: "roof-labels"}, svg);
    const taken = Array.from(layer.children, (node) => node.getBBox());
    const area = {x: margin.left, y: margin.top, width: width - margin.left - margin.right,
                  height: height - margin.top - margin.bottom};
    for (const result of devices) {
      const hw = result.hardware;
      const color = colors[hw.name];
      for (const ceiling of result.ceilings) {
        const rx = x(ceiling.ridge_flop_per_byte);
        const ry = y(ceiling.peak_flops_per_s);
        const ridge = el("circle", {class: "ridge", cx: rx, cy: ry, r: 5, stroke: color, "data-device": hw.name,
                                    "data-precisions": ceiling.label}, labels);
        hoverable(ridge, tooltip, `${hw.display_name}: ${ceiling.label} ridge point`, [
          ["peak", si(ceiling.peak_flops_per_s, "FLOP/s")],
          ["bandwidth", si(hw.memory_bytes_per_s, "B/s")],
          ["ridge", (+ceiling.ridge_flop_per_byte.toPrecision(3)) + " FLOP/B"],
        ]);
        const text = (devices.length > 1 ? hw.display_name + ": " : "") +
          `${ceiling.label} ${si(ceiling.peak_flops_per_s, "FLOP/s")}, ridge ${+ceiling.ridge_flop_per_byte.toPrecision(3)} FLOP/B`;
        placeLabel(labels, text, color, [[rx + 8, ry - 7, "start"], [rx + 8, ry + 15, "start"],
                                         [rx - 8, ry - 7, "end"], [rx - 8, ry + 15, "end"],
                                         [rx + 20, ry - 22, "start"], [rx + 20, ry + 30, "start"],
                                         [rx - 20, ry - 22, "end"], [rx - 20, ry + 30, "end"],
                                         [rx + 40, ry + 44, "start"], [rx - 40, ry - 36, "end"]], taken, area);
      }
    }

    const legend = html("div", {class: "legend"});
    for (const result of devices) {
      const item = html("span", {class: "legend-item"});
      const swatch = html("span", {class: "swatch"});
      swatch.style.background = colors[result.hardware.name];
      item.append(swatch, `${result.hardware.display_name} (${si(result.hardware.memory_bytes_per_s, "B/s")})`);
      legend.appendChild(item);
    }
    legend.appendChild(html("span", {class: "legend-item"}, "● prefill  ◆ decode  ○ ridge point; area ∝ share of time"));
    container.appendChild(legend);
    return svg;
  }

  // Share of the step's time by operator group: one stacked bar per result (device × phase).
  function breakdownChart(container, results, options) {
    options = options || {};
    container.replaceChildren();
    container.classList.add("chart");
    const width = options.width || Math.max(container.clientWidth || 0, 640);
    const rowHeight = 34;
    const margin = {left: 280, right: 200, top: 8, bottom: 30};
    const height = margin.top + margin.bottom + rowHeight * results.length;
    const svg = el("svg", {class: "breakdown", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": "time by operator group"});
    const tooltip = tooltipFor(container);
    const span = width - margin.left - margin.right;
    const groups = [];
    results.forEach((result, row) => {
      const top = margin.top + row * rowHeight;
      el("text", {x: margin.left - 8, y: top + rowHeight / 2 + 4, "text-anchor": "end", class: "tick"}, svg)
        .textContent = `${result.hardware.display_name} · ${result.workload.phase}`;
      let left = 0;
      for (const [group, time] of Object.entries(result.time_by_group_s)) {
        if (!groups.includes(group)) groups.push(group);
        const share = time / result.totals.time_s;
        if (share <= 0) continue;
        const bar = el("rect", {class: "group-bar", x: margin.left + left * span, y: top + 4, width: share * span,
                                height: rowHeight - 8, fill: GROUP_COLORS[group] || "#7f7f7f", "data-group": group}, svg);
        hoverable(bar, tooltip, `${group}: ${result.hardware.display_name}, ${result.workload.phase}`,
                  [["time", seconds(time)], ["share of step", percent(share)]]);
        if (share > 0.06) {
          el("text", {x: margin.left + (left + share / 2) * span, y: top + rowHeight / 2 + 4, "text-anchor": "middle",
                      class: "bar-label"}, svg).textContent = percent(share);
        }
        left += share;
      }
      el("text", {x: margin.left + span + 8, y: top + rowHeight / 2 + 4, class: "tick"}, svg).textContent =
        `${seconds(result.totals.time_s)}/step, ${result.totals.bound}-bound`;
    });
    for (let tick = 0; tick <= 100; tick += 20) {
      el("text", {x: margin.left + (tick / 100) * span, y: height - 10, "text-anchor": "middle", class: "tick"}, svg)
        .textContent = tick + "%";
    }
    container.appendChild(svg);
    const legend = html("div", {class: "legend"});
    for (const group of groups) {
      const item = html("span", {class: "legend-item"});
      const swatch = html("span", {class: "swatch"});
      swatch.style.background = GROUP_COLORS[group] || "#7f7f7f";
      item.append(swatch, group);
      legend.appendChild(item);
    }
    container.appendChild(legend);
    return svg;
  }

  function table(headers, rows, numeric) {
    const node = html("table", {class: "data"});
    const head = node.createTHead().insertRow();
    headers.forEach((header, i) => {
      const cell = html("th", numeric[i] ? {class: "num"} : {}, header);
      head.appendChild(cell);
    });
    const body = node.createTBody();
    for (const row of rows) {
      const line = body.insertRow();
      row.forEach((value, i) => {
        const cell = line.insertCell();
        cell.textContent = value;
        if (numeric[i]) cell.className = "num";
        if (value === "compute" || value === "memory") cell.className = "bound-" + value;
      });
    }
    return node;
  }

  // The per-operator table of one result: figures per instance, share of the whole step.
  function opTable(container, result) {
    const rows = result.ops.map((op) => [
      op.name, op.kind, op.group, String(op.count), si(op.flops, "FLOP"), si(op.bytes, "B"),
      op.arithmetic_intensity === null ? "∞" : String(+op.arithmetic_intensity.toPrecision(3)), op.bound, seconds(op.time_s), percent(op.time_share),
    ]);
    const node = table(["operator", "kind", "group", "count", "FLOPs", "bytes", "FLOP/B", "bound", "time", "share"],
                       rows, [false, false, false, true, true, true, true, false, true, true]);
    node.classList.add("ops-table");
    container.replaceChildren(node);
    return node;
  }

  function fitText(memory) {
    if (memory.fits === null) return "unknown";
    return memory.fits ? "yes" : "NO";
  }

  // One row per result: step time, tokens/s, bound, intensity, memory needed against capacity.
  function totalsTable(container, results) {
    const rows = results.map((r) => [
      r.hardware.display_name, r.workload.phase, seconds(r.totals.time_s), +r.totals.tokens_per_s.toPrecision(4) + "",
      +r.totals.expected_tokens_per_s.toPrecision(4) + "", r.totals.bound, +r.totals.arithmetic_intensity.toPrecision(3) + " FLOP/B", si(r.totals.flops, "FLOP"),
      si(r.totals.bytes, "B"), si(r.memory.total_bytes, "B"),
      r.memory.capacity_bytes ? si(r.memory.capacity_bytes, "B") : "?", fitText(r.memory),
    ]);
    const node = table(["device", "phase", "time/step", "tokens/s", "expected tokens/s", "bound", "intensity",
                        "FLOPs", "bytes", "memory needed", "capacity", "fits"],
                       rows, [false, false, true, true, true, false, true, true, true, true, true, false]);
    node.querySelector("thead th:nth-child(5)").title =
      "what engines reach: the efficiency model's expected time (achievable fractions of the roofs, fixed overheads)";
    node.classList.add("totals-table");
    container.replaceChildren(node);
    return node;
  }

  // The drawing helpers are shared with the page's other pictures (graph.js, explore.js).
  global.RooflineCharts = {si, seconds, percent, rooflineChart, breakdownChart, opTable, totalsTable, el, html,
                           tooltipFor, hoverable, logScale, decades, overlapping, DEVICE_COLORS, GROUP_COLORS};
})(window);
