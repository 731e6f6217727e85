// The page's Explore pictures, drawn as SVG with hover details: a batch × length heatmap of tokens/s and a
// generation timeline. No library, no network. The numbers come from the server (faces/web/explore.py:
// heatmap_payload, timeline_payload): this file only draws them. charts.js is loaded first.
"use strict";
(function (global) {
  const {el, html, si, seconds, tooltipFor, hoverable} = global.RooflineCharts;
  // Viridis (matplotlib's, as the CLI's --heatmap draws it), sampled at nine stops: dark = slow, yellow = fast.
  const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"];
  const VALUES = {
    tokens_per_s: {label: "tokens/s (roofline bound)", time: "time_s"},
    expected_tokens_per_s: {label: "expected tokens/s (efficiency model)", time: "expected_time_s"},
  };
  let serial = 0; // ids of the hatch patterns, one per drawn heatmap

  // The width a picture takes: its container's (the viewBox scales it down below 300 px).
  function widthOf(container, options) {
    return options.width || Math.max(Math.floor(container.clientWidth || 0), 300);
  }

  function hexToRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  // The colour of t in [0, 1] on the viridis scale, interpolated between its stops.
  function viridis(t) {
    const position = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(position), VIRIDIS.length - 2);
    const a = hexToRgb(VIRIDIS[i]);
    const b = hexToRgb(VIRIDIS[i + 1]);
    const f = position - i;
    return "rgb(" + a.map((value, k) => Math.round(value + (b[k] - value) * f)).join(",") + ")";
  }

  // A length as people write it: 4096 -> "4096", 32768 -> "32k", 131071 -> "131k".
  function lengthLabel(n) {
    if (n < 10000) return String(n);
    if (n % 1024 === 0) return n / 1024 + "k";
    return si(n, "", 3).replace(" ", "");
  }

  // A rate in a cell: 3 significant digits, the prefix glued on ("1.23k").
  function compact(value) {
    return si(value, "", 3).replace(" ", "");
  }

  function fitsText(fits, capacity) {
    if (capacity === null || capacity === undefined) return "unknown";
    return fits ? "yes" : "NO";
  }

  // Every k-th index so that labels `spacing` px apart get at least `minimum` px each (the last always shown).
  function labelled(count, spacing, minimum) {
    const every = Math.max(1, Math.ceil(minimum / spacing));
    const shown = new Set();
    for (let i = count - 1; i >= 0; i -= every) shown.add(i);
    return shown;
  }

  // A tick label centred on x, moved in to end at `low` or `high` where its estimated width would cross them.
  function tickText(parent, x, y, text, low, high) {
    const half = (String(text).length * 6.6) / 2;
    let anchor = "middle";
    if (x + half > high) [x, anchor] = [high, "end"];
    else if (x - half < low) [x, anchor] = [low, "start"];
    const node = el("text", {x, y, "text-anchor": anchor, class: "tick"}, parent);
    node.textContent = text;
    return node;
  }

  // "Nice" linear ticks from 0 to at least `high`: 1, 2 or 5 times a power of ten apart.
  function linearTicks(high, count) {
    if (!(high > 0)) return [0];
    const raw = high / Math.max(count, 1);
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const ticks = [];
    for (let t = 0; t <= high * (1 + 1e-9) + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
    if (ticks[ticks.length - 1] < high) ticks.push(+(ticks[ticks.length - 1] + step).toPrecision(12));
    return ticks;
  }

  function summary(container, parts, extraClass) {
    const line = html("p", {class: "explore-summary" + (extraClass ? " " + extraClass : "")});
    parts.forEach((part, i) => {
      if (i) line.append(html("span", {class: "sep", "aria-hidden": "true"}, " · "));
      const span = html("span", {class: "part"});
      if (Array.isArray(part)) span.append(html("strong", {}, part[0]), " " + part[1]);
      else span.append(part);
      line.append(span);
    });
    container.appendChild(line);
    return line;
  }

  function warnings(container, data, options) {
    if (options.warnings === false || !data.warnings || !data.warnings.length) return;
    const box = html("div", {class: "warning explore-warnings", role: "note"});
    for (const text of data.warnings) box.appendChild(html("div", {}, text));
    container.appendChild(box);
  }

  function legendItem(legend, swatchClass, text) {
    const item = html("span", {class: "legend-item"});
    item.append(html("span", {class: "explore-swatch " + swatchClass, "aria-hidden": "true"}), text);
    legend.appendChild(item);
  }

  // Arrow keys move the focus among `nodes` (one tab stop for the whole set): `step(index, key)` gives the next index.
  function roving(nodes, step) {
    nodes.forEach((node, i) => {
      node.setAttribute("tabindex", i === 0 ? "0" : "-1");
      node.addEventListener("keydown", (event) => {
        const next = step(i, event.key);
        if (next === null || next === i || next < 0 || next >= nodes.length) return;
        event.preventDefault();
        node.setAttribute("tabindex", "-1");
        nodes[next].setAttribute("tabindex", "0");
        nodes[next].focus();
      });
    });
  }

  // Tokens/s over batch (rows, upwards) × length (columns): colour on a log scale, the compute-bound boundary
  // as a step line (the lower edge of each column's first compute-bound cell), what does not fit hatched.
  // options: value ("tokens_per_s" | "expected_tokens_per_s"), width, warnings (false: not shown here).
  function heatmap(container, data, options) {
    options = options || {};
    const value = VALUES[options.value] ? options.value : "tokens_per_s";
    container.replaceChildren();
    container.classList.add("explore", "explore-heatmap");
    const width = widthOf(container, options);
    const narrow = width < 560;
    const rows = data.batch.length;
    const columns = data.seq_len.length;
    const grid = data[value];
    const finite = grid.flat().filter((v) => v > 0 && Number.isFinite(v));
    const low = Math.min(...finite);
    const high = Math.max(...finite);
    const span = Math.log10(high) - Math.log10(low);
    const shade = (v) => (span > 0 ? (Math.log10(v) - Math.log10(low)) / span : 0.5);

    const margin = {left: narrow ? 48 : 66, right: narrow ? 8 : 16, top: 10, bottom: 44};
    const plotWidth = width - margin.left - margin.right;
    const cellWidth = plotWidth / columns;
    // Rows of 8 to 36 px in about 380 px; a grid of one to three rows is given 120 px, room for the axis title.
    const cellHeight = Math.max(Math.min(36, Math.max(8, 380 / rows)), 120 / rows);
    const plotHeight = cellHeight * rows;
    const legendTop = margin.top + plotHeight + margin.bottom;
    const height = legendTop + 44;
    const left = (column) => margin.left + column * cellWidth;
    const top = (row) => margin.top + (rows - 1 - row) * cellHeight; // batch grows upwards

    summary(container, [
      [data.model_display_name, "on " + data.hardware_display_name],
      `${data.phase}, weights ${data.weights}, activations ${data.activations}` +
        (data.kv_cache !== data.activations ? `, KV ${data.kv_cache}` : "") +
        (data.flash_attention ? ", FlashAttention" : ""),
      VALUES[value].label,
    ]);
    warnings(container, data, options);

    const svg = el("svg", {class: "heatmap", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": `${VALUES[value].label} over batch and sequence length`,
                           "data-value": value});
    const hatchId = `explore-hatch-${++serial}`;
    const pattern = el("pattern", {id: hatchId, width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                   patternTransform: "rotate(45)"}, el("defs", {}, svg));
    el("rect", {width: 6, height: 6, class: "hatch-ground"}, pattern);
    el("line", {x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line"}, pattern);

    const tooltip = tooltipFor(container);
    // Under the cells, grey: a cell that does not fit is drawn faint over it, then hatched.
    el("rect", {class: "heat-ground", x: margin.left, y: margin.top, width: plotWidth, height: plotHeight}, svg);
    const cells = el("g", {class: "heat-cells"}, svg);
    const hatches = el("g", {class: "no-fit-hatch", "aria-hidden": "true"});
    const labels = el("g", {class: "heat-labels", "aria-hidden": "true"});
    const showValues = cellWidth >= 40 && cellHeight >= 18;
    const nodes = [];
    for (let row = rows - 1; row >= 0; row--) {
      for (let column = 0; column < columns; column++) {
        const v = grid[row][column];
        const fits = data.fits[row][column];
        const bound = data.compute_bound[row][column] ? "compute" : "memory";
        const t = shade(v);
        const cell = el("rect", {
          class: "heat-cell is-" + bound + (fits ? "" : " no-fit"), x: left(column), y: top(row),
          width: cellWidth, height: cellHeight, fill: viridis(t), "data-batch": data.batch[row],
          "data-seq-len": data.seq_len[column], "data-value": v, "data-bound": bound, "data-fits": fits,
        }, cells);
        const batch = data.batch[row];
        const length = data.seq_len[column];
        const memory = si(data.memory_bytes[row][column], "B") +
          (data.capacity_bytes ? ` of ${si(data.capacity_bytes, "B")}` : "");
        hoverable(cell, tooltip, `batch ${batch} × ${length} tokens`, [
          ["tokens/s (bound)", compact(data.tokens_per_s[row][column])],
          ["tokens/s (expected)", compact(data.expected_tokens_per_s[row][column])],
          ["step time", `${seconds(data.time_s[row][column])} bound, ${seconds(data.expected_time_s[row][column])} expected`],
          ["bound", bound],
          ["compute-bound from", data.boundary[column] === null ? "no batch in this grid" : `batch ${data.boundary[column]}`],
          ["memory", memory],
          ["fits", fitsText(fits, data.capacity_bytes)],
        ]);
        nodes.push(cell);
        if (!fits) {
          el("rect", {x: left(column), y: top(row), width: cellWidth, height: cellHeight, fill: `url(#${hatchId})`},
             hatches);
        }
        if (showValues) {
          el("text", {x: left(column) + cellWidth / 2, y: top(row) + cellHeight / 2 + 4, "text-anchor": "middle",
                      class: "heat-label" + (t > 0.62 && fits ? " dark" : "")}, labels).textContent = compact(v);
        }
      }
    }
    svg.append(hatches, labels);
    // Cells in reading order (top row first); arrows move by a cell, the focus shows its figures.
    roving(nodes, (i, key) => ({ArrowRight: (i + 1) % columns ? i + 1 : null, ArrowLeft: i % columns ? i - 1 : null,
                                ArrowDown: i + columns, ArrowUp: i - columns}[key] ?? null));

    // The boundary: per column, the lower edge of its first compute-bound cell; joined where neighbours have one.
    const boundary = data.boundary;
    let d = "";
    let previous = null;
    boundary.forEach((batch, column) => {
      if (batch === null) {
        previous = null;
        return;
      }
      const y = top(data.batch.indexOf(batch)) + cellHeight;
      d += (previous === null ? `M${left(column)},${y}` : `L${left(column)},${y}`) + `L${left(column + 1)},${y}`;
      previous = y;
    });
    el("path", {class: "boundary-halo", d, "aria-hidden": "true"}, svg);
    el("path", {class: "boundary", d, "data-boundary": JSON.stringify(boundary)}, svg);

    // Axes: a tick per row and column where there is room, the last always.
    const axes = el("g", {class: "heat-axes"}, svg);
    const rowLabels = labelled(rows, cellHeight, 14);
    data.batch.forEach((batch, row) => {
      if (!rowLabels.has(row)) return;
      el("text", {x: margin.left - 6, y: top(row) + cellHeight / 2 + 4, "text-anchor": "end", class: "tick"}, axes)
        .textContent = String(batch);
    });
    const columnLabels = labelled(columns, cellWidth, narrow ? 34 : 40);
    data.seq_len.forEach((length, column) => {
      if (!columnLabels.has(column)) return;
      tickText(axes, left(column) + cellWidth / 2, margin.top + plotHeight + 16, lengthLabel(length), 2, width - 2);
    });
    const lengthTitle = data.phase === "prefill" ? "prompt length (tokens)" : "tokens cached (sequence length)";
    el("text", {x: margin.left + plotWidth / 2, y: margin.top + plotHeight + 36, "text-anchor": "middle",
                class: "axis-label"}, axes).textContent = lengthTitle;
    const middle = margin.top + plotHeight / 2;
    el("text", {x: 13, y: middle, "text-anchor": "middle", class: "axis-label", transform: `rotate(-90 13 ${middle})`},
       axes).textContent = "batch (sequences)";

    // The colour scale: a bar of the grid's range, ticks at powers of ten (or its ends within one decade).
    const barWidth = Math.min(plotWidth, 360);
    const scale = el("g", {class: "color-scale"}, svg);
    const steps = 48;
    for (let i = 0; i < steps; i++) {
      el("rect", {x: margin.left + (i * barWidth) / steps, y: legendTop, width: barWidth / steps + 0.5, height: 10,
                  fill: viridis((i + 0.5) / steps)}, scale);
    }
    el("rect", {x: margin.left, y: legendTop, width: barWidth, height: 10, class: "scale-frame"}, scale);
    const at = (v) => margin.left + shade(v) * barWidth;
    // Powers of ten inside the range, and its ends where they are not close to one.
    const ticks = [];
    for (let e = Math.ceil(Math.log10(low) - 1e-9); e <= Math.floor(Math.log10(high) + 1e-9); e++) ticks.push(10 ** e);
    for (const end of [low, high]) {
      if (ticks.every((tick) => Math.abs(at(tick) - at(end)) > 44)) ticks.push(end);
    }
    for (const tick of ticks) {
      el("line", {x1: at(tick), x2: at(tick), y1: legendTop + 10, y2: legendTop + 14, class: "scale-tick"}, scale);
      tickText(scale, at(tick), legendTop + 26, compact(tick), 2, width - 2);
    }
    const unit = el("text", {x: margin.left + barWidth + 8, y: legendTop + 9, class: "tick"}, scale);
    unit.textContent = value === "tokens_per_s" ? "tokens/s" : "expected tokens/s";
    if (margin.left + barWidth + 8 + 110 > width) { // no room beside the bar: under it, at its end
      unit.setAttribute("x", margin.left + barWidth);
      unit.setAttribute("y", legendTop + 40);
      unit.setAttribute("text-anchor", "end");
    }
    container.appendChild(svg);

    const legend = html("div", {class: "explore-legend"});
    legendItem(legend, "boundary-swatch", "compute-bound at and above this batch");
    legendItem(legend, "no-fit-swatch", "does not fit in memory");
    const bounds = data.compute_bound.flat();
    const uniform = bounds.every(Boolean) ? "compute" : bounds.some(Boolean) ? null : "memory";
    if (uniform) { // no boundary inside the grid: say which side of it the whole grid is on
      legend.appendChild(html("span", {class: "legend-item bound-everywhere", "data-bound": uniform},
                              `${uniform}-bound everywhere in this grid`));
    }
    container.appendChild(legend);
    return svg;
  }

  // Prefill, then every decode step: the elapsed time (the prefill's TTFT first) and each step's time, coloured
  // by its bound, with the mean (TPOT) and the steps where the bound changes. options: width, warnings.
  function timeline(container, data, options) {
    options = options || {};
    container.replaceChildren();
    container.classList.add("explore", "explore-timeline");
    const width = widthOf(container, options);
    const narrow = width < 560;
    const samples = data.steps;
    const last = samples[samples.length - 1];
    const fits = data.fits === null ? "fit unknown" : data.fits ? "fits" : "does NOT fit";

    summary(container, [
      ["TTFT", `${seconds(data.ttft_s)} (prefill of ${data.prompt_len} tokens, ${data.prefill_bound}-bound)`],
      ["TPOT", `${seconds(data.tpot_s)} mean (${seconds(data.first_step_time_s)} → ${seconds(data.last_step_time_s)})`],
      ["total", `${seconds(data.total_time_s)} for ${data.new_tokens} tokens × ${data.batch} ` +
                `sequence${data.batch === 1 ? "" : "s"}`],
      ["tokens/s", `${+data.tokens_per_s.toPrecision(4)} end to end, ${+data.decode_tokens_per_s.toPrecision(4)} decoding`],
      ["memory", `${si(data.memory_bytes, "B")} at the end, ${fits}`],
    ]);
    warnings(container, data, options);

    const margin = {left: narrow ? 54 : 70, right: narrow ? 10 : 20, top: 22, bottom: 44};
    const panelGap = 40;
    const topHeight = narrow ? 150 : 190;
    const bottomHeight = narrow ? 140 : 170;
    const height = margin.top + topHeight + panelGap + bottomHeight + margin.bottom;
    const plotWidth = width - margin.left - margin.right;
    const x = (step) => margin.left + (step / Math.max(data.decode_steps, 1)) * plotWidth;
    const elapsedTicks = linearTicks(data.total_time_s, narrow ? 4 : 5);
    const elapsedTop = elapsedTicks[elapsedTicks.length - 1];
    const y1 = (s) => margin.top + topHeight - (s / elapsedTop) * topHeight;
    const stepTop = margin.top + topHeight + panelGap;
    const stepTicks = linearTicks(Math.max(...samples.map((s) => s.time_s)) * 1.08, narrow ? 3 : 4);
    const stepHigh = stepTicks[stepTicks.length - 1];
    const y2 = (s) => stepTop + bottomHeight - (s / stepHigh) * bottomHeight;
    const bottom = stepTop + bottomHeight;

    const svg = el("svg", {class: "timeline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                           "aria-label": "generation timeline: elapsed time and time per decode step"});
    const grid = el("g", {class: "grid"}, svg);
    for (const tick of elapsedTicks) {
      el("line", {x1: margin.left, x2: width - margin.right, y1: y1(tick), y2: y1(tick)}, grid);
      el("text", {x: margin.left - 6, y: y1(tick) + 4, "text-anchor": "end", class: "tick"}, grid).textContent =
        tick ? seconds(tick) : "0";
    }
    for (const tick of stepTicks) {
      el("line", {x1: margin.left, x2: width - margin.right, y1: y2(tick), y2: y2(tick)}, grid);
      el("text", {x: margin.left - 6, y: y2(tick) + 4, "text-anchor": "end", class: "tick"}, grid).textContent =
        tick ? seconds(tick) : "0";
    }
    const stepTickValues = linearTicks(data.decode_steps, narrow ? 4 : 8).filter((t) => Number.isInteger(t));
    for (const tick of stepTickValues) {
      if (tick > data.decode_steps) continue;
      el("line", {x1: x(tick), x2: x(tick), y1: margin.top, y2: margin.top + topHeight}, grid);
      el("line", {x1: x(tick), x2: x(tick), y1: stepTop, y2: bottom}, grid);
      tickText(grid, x(tick), bottom + 16, String(tick), 2, width - 2);
    }
    el("text", {x: margin.left + plotWidth / 2, y: height - 8, "text-anchor": "middle", class: "axis-label"}, svg)
      .textContent = "decode step (0: the prefill's first token)";
    el("text", {x: margin.left, y: margin.top - 8, class: "panel-title"}, svg).textContent =
      "elapsed time (prefill, then decode)";
    el("text", {x: margin.left, y: stepTop - 8, class: "panel-title"}, svg).textContent = "time per decode step";

    // The prefill: a band up to the TTFT, where the first token appears (step 0).
    el("rect", {class: "tl-prefill", x: margin.left, y: y1(data.ttft_s), width: plotWidth,
                height: margin.top + topHeight - y1(data.ttft_s)}, svg);
    const prefillLabel = el("text", {x: width - margin.right - 6, y: y1(data.ttft_s) + 14, "text-anchor": "end",
                                     class: "tl-note"}, svg);
    prefillLabel.textContent = `prefill: TTFT ${seconds(data.ttft_s)}`;
    if (margin.top + topHeight - y1(data.ttft_s) < 18) prefillLabel.setAttribute("y", y1(data.ttft_s) - 5);

    // The lines, in runs of one bound (a run starts at the previous sample, so the line is continuous).
    const lines = el("g", {class: "tl-lines"}, svg);
    const drawRuns = (yOf, start) => {
      let path = null;
      let bound = null;
      let from = start;
      for (const sample of samples) {
        const b = sample.compute_bound ? "compute" : "memory";
        const point = `${x(sample.step)},${yOf(sample)}`;
        if (b !== bound) {
          path = el("path", {class: `tl-line is-${b}`, d: from ? `M${from}L${point}` : `M${point}`}, lines);
          bound = b;
        } else {
          path.setAttribute("d", path.getAttribute("d") + `L${point}`);
        }
        from = point;
      }
    };
    drawRuns((s) => y1(s.cumulative_time_s), `${x(0)},${y1(data.ttft_s)}`);
    drawRuns((s) => y2(s.time_s), null);
    el("circle", {class: "tl-first-token", cx: x(0), cy: y1(data.ttft_s), r: 4}, svg);
    if (samples.length === 1) {
      el("circle", {class: `tl-dot is-${last.compute_bound ? "compute" : "memory"}`, cx: x(last.step),
                    cy: y2(last.time_s), r: 3.5}, svg);
    }
    // TPOT: the mean step, dashed across the lower panel.
    el("line", {class: "tl-tpot", x1: margin.left, x2: width - margin.right, y1: y2(data.tpot_s), y2: y2(data.tpot_s)},
       svg);
    // At the right, under the line: the steps grow with the cache, so the line is above the mean there.
    const tpotLabel = el("text", {x: width - margin.right - 6, y: y2(data.tpot_s) + 15, "text-anchor": "end",
                                  class: "tl-note"}, svg);
    tpotLabel.textContent = `TPOT ${seconds(data.tpot_s)} (mean)`;
    if (y2(data.tpot_s) + 15 > bottom - 4) tpotLabel.setAttribute("y", y2(data.tpot_s) - 6);

    // Bound changes: the step's as a line over both panels; the operators' as marks under the axis.
    const tooltip = tooltipFor(container);
    const changes = el("g", {class: "tl-changes"}, svg);
    const operatorChanges = new Map();
    for (const change of data.changes) {
      if (change.name === "step") {
        const cx = x(change.step);
        el("line", {class: "tl-change", x1: cx, x2: cx, y1: margin.top, y2: bottom, "data-step": change.step}, changes);
        const label = el("text", {x: cx + 4, y: stepTop + 12, class: "tl-note change-label"}, changes);
        label.textContent = `→ ${change.to_bound}-bound`;
        if (cx + 100 > width - margin.right) {
          label.setAttribute("x", cx - 4);
          label.setAttribute("text-anchor", "end");
        }
      } else {
        if (!operatorChanges.has(change.step)) operatorChanges.set(change.step, []);
        operatorChanges.get(change.step).push(change);
      }
    }
    for (const [step, list] of operatorChanges) {
      const cx = x(step);
      const mark = el("path", {class: "tl-op-change", d: `M${cx},${bottom + 1}l4,7h-8z`, "data-step": step}, changes);
      hoverable(mark, tooltip, `step ${step} (${list[0].past_len} cached): ${list.length} operator` +
                               (list.length === 1 ? "" : "s") + " change bound",
                list.slice(0, 12).map((c) => [c.name, `${c.from_bound} → ${c.to_bound}`]));
    }

    // Hover and arrow keys: the nearest sampled step, marked on both lines.
    const guide = el("g", {class: "tl-guide", "aria-hidden": "true", display: "none"}, svg);
    const guideLine = el("line", {y1: margin.top, y2: bottom}, guide);
    const dotTop = el("circle", {r: 4}, guide);
    const dotBottom = el("circle", {r: 4}, guide);
    const overlay = el("rect", {class: "tl-overlay", x: margin.left, y: margin.top, width: plotWidth,
                                height: bottom - margin.top, tabindex: 0,
                                "aria-label": "decode steps: arrow keys move between sampled steps"}, svg);
    let current = 0;
    const rowsOf = (sample) => [
      ["cached tokens", String(sample.past_len)],
      ["step time", seconds(sample.time_s)],
      ["elapsed", seconds(sample.cumulative_time_s)],
      ["bound", sample.compute_bound ? "compute" : "memory"],
      ["vs TPOT", `${(sample.time_s / data.tpot_s).toFixed(2)}× the mean`],
    ];
    const show = (index, event) => {
      current = index;
      const sample = samples[index];
      const cx = x(sample.step);
      guideLine.setAttribute("x1", cx);
      guideLine.setAttribute("x2", cx);
      dotTop.setAttribute("cx", cx);
      dotTop.setAttribute("cy", y1(sample.cumulative_time_s));
      dotBottom.setAttribute("cx", cx);
      dotBottom.setAttribute("cy", y2(sample.time_s));
      guide.removeAttribute("display");
      const box = svg.getBoundingClientRect();
      const scale = box.width / width;
      const at = event || {clientX: box.left + cx * scale, clientY: box.top + y2(sample.time_s) * scale};
      tooltip.show(at, `step ${sample.step} of ${data.decode_steps}`, rowsOf(sample));
    };
    const nearest = (event) => {
      const box = svg.getBoundingClientRect();
      const position = ((event.clientX - box.left) / box.width) * width;
      let best = 0;
      samples.forEach((sample, i) => {
        if (Math.abs(x(sample.step) - position) < Math.abs(x(samples[best].step) - position)) best = i;
      });
      return best;
    };
    const hide = () => {
      guide.setAttribute("display", "none");
      tooltip.hide();
    };
    overlay.addEventListener("mousemove", (event) => show(nearest(event), event));
    overlay.addEventListener("mouseleave", hide);
    overlay.addEventListener("focus", () => show(current));
    overlay.addEventListener("blur", hide);
    overlay.addEventListener("keydown", (event) => {
      const move = {ArrowRight: 1, ArrowLeft: -1, Home: -samples.length, End: samples.length}[event.key];
      if (move === undefined) return;
      event.preventDefault();
      show(Math.min(Math.max(current + move, 0), samples.length - 1));
    });
    // The operators' marks stay hoverable above the overlay.
    svg.appendChild(changes);
    container.appendChild(svg);

    const legend = html("div", {class: "explore-legend"});
    legendItem(legend, "memory-swatch", "memory-bound step");
    legendItem(legend, "compute-swatch", "compute-bound step");
    legendItem(legend, "tpot-swatch", "TPOT (mean step)");
    if (data.changes.length) legendItem(legend, "change-swatch", "bound changes");
    if (data.changes_total > data.changes.length) {
      legend.appendChild(html("span", {class: "legend-item"}, `(${data.changes.length} of ${data.changes_total} ` +
                                                              "changes listed)"));
    }
    container.appendChild(legend);
    return svg;
  }

  global.RooflineExplore = {heatmap, timeline};
})(window);
