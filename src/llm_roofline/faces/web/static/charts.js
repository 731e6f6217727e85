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
        tip.style.left = Math.max(0, Math.min(x, box.width - tip.offsetWidth - 4)) + "px";
        tip.style.top = Math.max(0, Math.min(y, box.height - tip.offsetHeight - 4)) + "px";
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

  // The width a chart may take: its container's, never less than a phone's narrowest (the page is laid
  // out from 340 px; below that the chart is scaled down by its viewBox, never wider than its box).
  function chartWidth(container) {
    return Math.max(Math.floor(container.clientWidth || 0), 300);
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
    const width = options.width || chartWidth(container);
    const narrow = width < 560;
    const height = options.height || (narrow ? 360 : 460);
    const margin = {left: narrow ? 70 : 104, right: narrow ? 8 : 16, top: 16, bottom: 54};
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
                           "aria-label": "roofline chart", "data-width": width});
    const grid = el("g", {class: "grid"}, svg);
    for (const t of decades(x0, x1)) {
      el("line", {x1: x(t), x2: x(t), y1: margin.top, y2: height - margin.bottom}, grid);
      el("text", {x: x(t), y: height - margin.bottom + 16, "text-anchor": t >= x1 ? "end" : t <= x0 ? "start" : "middle",
                  class: "tick"},
         grid).textContent = si(t, "");
    }
    for (const t of decades(y0, y1)) {
      el("line", {x1: margin.left, x2: width - margin.right, y1: y(t), y2: y(t)}, grid);
      el("text", {x: margin.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick"}, grid).textContent =
        si(t, narrow ? "" : "FLOP/s");
    }
    el("text", {x: (margin.left + width - margin.right) / 2, y: height - 10, "text-anchor": "middle",
                class: "axis-label"}, svg).textContent = narrow ? "intensity (FLOP/byte)" : "arithmetic intensity (FLOP/byte)";
    el("text", {x: 16, y: (margin.top + height - margin.bottom) / 2, "text-anchor": "middle", class: "axis-label",
                transform: `rotate(-90 16 ${(margin.top + height - margin.bottom) / 2})`}, svg)
      .textContent = narrow ? "FLOP/s attainable" : "attainable performance (FLOP/s)";

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
    for (const result of devices) {  // every ridge point first: a label must not cover one
      const hw = result.hardware;
      for (const ceiling of result.ceilings) {
        const ridge = el("circle", {class: "ridge", cx: x(ceiling.ridge_flop_per_byte), cy: y(ceiling.peak_flops_per_s),
                                    r: 5, stroke: colors[hw.name], "data-device": hw.name,
                                    "data-precisions": ceiling.label}, labels);
        hoverable(ridge, tooltip, `${hw.display_name}: ${ceiling.label} ridge point`, [
          ["peak", si(ceiling.peak_flops_per_s, "FLOP/s")],
          ["bandwidth", si(hw.memory_bytes_per_s, "B/s")],
          ["ridge", (+ceiling.ridge_flop_per_byte.toPrecision(3)) + " FLOP/B"],
        ]);
        taken.push(ridge.getBBox());
      }
    }
    for (const result of devices) {
      const hw = result.hardware;
      const color = colors[hw.name];
      for (const ceiling of result.ceilings) {
        const rx = x(ceiling.ridge_flop_per_byte);
        const ry = y(ceiling.peak_flops_per_s);
        const text = narrow ? `${ceiling.label} ${si(ceiling.peak_flops_per_s, "FLOP/s")}` :
          (devices.length > 1 ? hw.display_name + ": " : "") +
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
    const width = options.width || chartWidth(container);
    // Wide: the row's name on the left, its total on the right. Narrow: both on a line above the bar.
    const narrow = width < 720;
    const rowHeight = narrow ? 50 : 34;
    const margin = narrow ? {left: 4, right: 4, top: 8, bottom: 30} : {left: 280, right: 200, top: 8, bottom: 30};
    const height = margin.top + margin.bottom + rowHeight * results.length;
    const svg = el("svg", {class: "breakdown", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": "time by operator group"});
    const tooltip = tooltipFor(container);
    const span = width - margin.left - margin.right;
    const groups = [];
    results.forEach((result, row) => {
      const top = margin.top + row * rowHeight + (narrow ? 18 : 0);
      const barHeight = narrow ? rowHeight - 22 : rowHeight;
      const name = `${result.hardware.display_name} · ${result.workload.phase}`;
      const total = `${seconds(result.totals.time_s)}/step, ${result.totals.bound}-bound`;
      if (narrow) {
        el("text", {x: margin.left, y: top - 5, class: "tick"}, svg).textContent = `${name}: ${total}`;
      } else {
        el("text", {x: margin.left - 8, y: top + rowHeight / 2 + 4, "text-anchor": "end", class: "tick"}, svg)
          .textContent = name;
      }
      let left = 0;
      for (const [group, time] of Object.entries(result.time_by_group_s)) {
        if (!groups.includes(group)) groups.push(group);
        const share = time / result.totals.time_s;
        if (share <= 0) continue;
        const bar = el("rect", {class: "group-bar", x: margin.left + left * span, y: top + 4, width: share * span,
                                height: barHeight - 8, fill: GROUP_COLORS[group] || "#7f7f7f", "data-group": group}, svg);
        hoverable(bar, tooltip, `${group}: ${result.hardware.display_name}, ${result.workload.phase}`,
                  [["time", seconds(time)], ["share of step", percent(share)]]);
        if (share * span > 44) {
          el("text", {x: margin.left + (left + share / 2) * span, y: top + barHeight / 2 + 4, "text-anchor": "middle",
                      class: "bar-label"}, svg).textContent = percent(share);
        }
        left += share;
      }
      if (!narrow) {
        el("text", {x: margin.left + span + 8, y: top + rowHeight / 2 + 4, class: "tick"}, svg).textContent = total;
      }
    });
    for (let tick = 0; tick <= 100; tick += 20) {
      const anchor = tick === 0 ? "start" : tick === 100 ? "end" : "middle";
      el("text", {x: margin.left + (tick / 100) * span, y: height - 10, "text-anchor": anchor, class: "tick"}, svg)
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

  function rate(value) {
    return value >= 1000 ? Math.round(value).toLocaleString("en-US") : String(+value.toPrecision(4));
  }

  // Devices ranked by expected tokens/s (the efficiency model's), the roofline bound beside it: one row
  // per result, the label line above its two bars, so that it reads the same on a phone and on a desktop.
  // A device the model does not fit in is marked, its bars hatched, and ranked after those it fits.
  function rankingChart(container, results, options) {
    options = options || {};
    container.replaceChildren();
    container.classList.add("chart");
    const width = options.width || chartWidth(container);
    const phases = new Set(results.map((r) => r.workload.phase));
    const ranked = results.slice().sort((a, b) => (a.memory.fits === false) - (b.memory.fits === false) ||
      b.totals.expected_tokens_per_s - a.totals.expected_tokens_per_s);
    const narrow = width < 560;
    const rowHeight = 58;
    const noteHeight = narrow ? 16 : 0;  // narrow: "does not fit" on a line of its own, under the bars
    const margin = {left: 4, right: 8, top: 4, bottom: 8};
    const tops = [];
    let height = margin.top;
    for (const result of ranked) {
      tops.push(height);
      height += rowHeight + (result.memory.fits === false ? noteHeight : 0);
    }
    height += margin.bottom;
    const colors = deviceColors(results);
    const svg = el("svg", {class: "ranking", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": "devices ranked by tokens per second"});
    const defs = el("defs", {}, svg);
    const hatch = el("pattern", {id: "no-fit-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                 patternTransform: "rotate(45)"}, defs);
    el("rect", {width: 6, height: 6, fill: "#f1f3f4"}, hatch);
    el("line", {x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9aa0a6", "stroke-width": 3}, hatch);
    const tooltip = tooltipFor(container);
    const most = Math.max(...ranked.map((r) => Math.max(r.totals.tokens_per_s, r.totals.expected_tokens_per_s)));
    const span = width - margin.left - margin.right;
    ranked.forEach((result, rank) => {
      const t = result.totals;
      const top = tops[rank];
      const fits = result.memory.fits;
      const row = el("g", {class: "rank-row" + (fits === false ? " no-fit" : ""), "data-device": result.hardware.name,
                           "data-rank": rank + 1, "data-tokens-per-s": t.tokens_per_s,
                           "data-expected-tokens-per-s": t.expected_tokens_per_s,
                           "data-fits": String(fits)}, svg);
      const phase = phases.size > 1 ? ` · ${result.workload.phase}` : "";
      const fit = fits === false ? ` — does not fit: needs ${si(result.memory.total_bytes, "B")} of ` +
        `${si(result.memory.capacity_bytes, "B")}` : "";
      el("text", {x: margin.left, y: top + 14, class: "rank-label"}, row).textContent =
        `${rank + 1}. ${result.hardware.display_name}${phase}${narrow ? "" : fit}`;
      if (narrow && fit) {
        el("text", {x: margin.left, y: top + rowHeight + 8, class: "rank-label"}, row).textContent = fit.slice(3);
      }
      const color = colors[result.hardware.name];
      const bars = [["bound", t.tokens_per_s, top + 20, 10, 0.35], ["expected", t.expected_tokens_per_s, top + 32, 14, 1]];
      for (const [kind, value, y, barHeight, opacity] of bars) {
        const barWidth = Math.max(1, (value / most) * span * (narrow ? 0.5 : 0.72));
        const bar = el("rect", {class: `rank-bar ${kind}`, x: margin.left, y, width: barWidth, height: barHeight,
                                rx: 2, fill: fits === false ? "url(#no-fit-hatch)" : color,
                                "fill-opacity": fits === false ? 1 : opacity,
                                stroke: fits === false ? "#5f6368" : "none"}, row);
        hoverable(bar, tooltip, `${result.hardware.display_name}${phase}`, [
          ["roofline bound", `${rate(t.tokens_per_s)} tokens/s`],
          ["expected", `${rate(t.expected_tokens_per_s)} tokens/s`],
          ["bound", t.bound],
          ["memory", `${si(result.memory.total_bytes, "B")} of ${result.memory.capacity_bytes ?
            si(result.memory.capacity_bytes, "B") : "?"}`],
        ]);
        el("text", {x: margin.left + barWidth + 6, y: y + barHeight - 2, class: `rank-value ${kind}`}, row)
          .textContent = `${rate(value)}${narrow ? "" : " tokens/s"} ${kind === "bound" ? "bound" : "expected"}`;
      }
    });
    container.appendChild(svg);
    const legend = html("div", {class: "legend"});
    legend.append(html("span", {class: "legend-item"}, "pale bar: roofline bound · solid bar: expected (efficiency model)"),
                  html("span", {class: "legend-item"}, "hatched: does not fit in the device's memory"));
    container.appendChild(legend);
    return svg;
  }

  // Mark one operator on the roofline chart: the marker holding it for ``device`` (null clears the mark).
  function markOperator(container, device, opName) {
    for (const node of container.querySelectorAll(".op-point.selected")) node.classList.remove("selected");
    if (!opName) return null;
    const marker = Array.from(container.querySelectorAll(".op-point")).find((node) =>
      node.dataset.device === device && node.dataset.names.split(" ").includes(opName));
    if (marker) {
      marker.classList.add("selected");
      marker.parentNode.appendChild(marker);  // on top of the others
    }
    return marker || null;
  }

  // The advice (``llm-roofline advise --format json``) in words: the bound and why, the speed and the fit,
  // the levers that pay most, the latency verdict and what to optimise first. Nothing is computed here.
  function adviceBlock(container, advice) {
    const item = (text, className) => {
      const node = html("li", className ? {class: className} : {}, text);
      return node;
    };
    const head = html("p", {class: "advice-head"});
    const speed = html("strong", {"data-figure": "tokens_per_s"}, `${rate(advice.tokens_per_s)} tokens/s`);
    const expected = html("strong", {"data-figure": "expected_tokens_per_s"},
                          `${rate(advice.expected_tokens_per_s)} tokens/s`);
    const fit = html("span", {class: advice.fits === false ? "fit no" : "fit", "data-figure": "fits"}, advice.fit_text);
    head.append(html("span", {class: `badge bound-${advice.bound}`}, `${advice.bound}-bound`), " ", speed,
                " at the roofline bound, ", expected, " expected · ", fit);
    const levers = html("ol", {class: "advice-levers"});
    levers.append(...advice.top.map((lever) => {
      const node = item(lever.text, lever.pays ? "pays" : "no-gain");
      node.dataset.knob = lever.knob;
      node.dataset.value = lever.value;
      return node;
    }));
    const notes = html("ul", {class: "advice-notes"});
    if (advice.feasibility_text) {
      const met = advice.feasibility && advice.feasibility.baseline.meets;
      notes.append(item(advice.feasibility_text, met ? "target meets" : "target misses"));
    }
    const share = advice.share_advice;
    notes.append(item(`attention is ${percent(advice.attention_flop_share)} of attention + FFN FLOPs ` +
      `(${percent(advice.attention_time_share)} of their time on this device): ${share.focus} — ` +
      `${share.actions.join(", ")}`, "share"));
    container.replaceChildren(head, html("p", {class: "advice-why"}, advice.bound_reason),
                              html("p", {class: "advice-title"}, "What pays most:"), levers, notes);
    return container;
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
    Array.from(node.tBodies[0].rows).forEach((row, i) => {
      row.dataset.op = result.ops[i].name;
      row.tabIndex = 0;
    });
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
  global.RooflineCharts = {si, seconds, percent, rate, rooflineChart, breakdownChart, rankingChart, markOperator,
                           adviceBlock,
                           opTable, totalsTable, chartWidth, el, html,
                           tooltipFor, hoverable, logScale, decades, overlapping, DEVICE_COLORS, GROUP_COLORS};
})(window);
