// jaxsim HTML views: vanilla JS + SVG, no network. Reads the JSON of the element #jaxsim-data.
// Data format: jaxsim/viz/html.py (explanations), jaxsim/viz/report.py (corpus reports) and
// jaxsim/viz/search.py (search results, drawn by search.js with the helpers exported below).
(function () {
  "use strict";
  // The SVG namespace, read from the HTML parser so the page holds no URL at all.
  const SVG_NS = (() => { const d = document.createElement("div"); d.innerHTML = "<svg></svg>"; return d.firstChild.namespaceURI; })();
  const FONT = '13px system-ui, -apple-system, "Segoe UI", sans-serif';
  const SMALL = '12px system-ui, -apple-system, "Segoe UI", sans-serif';
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  let counter = 0;
  let canvas = null;

  function html(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function svg(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function textWidth(text, font) {
    canvas = canvas || document.createElement("canvas");
    const ctx = canvas.getContext("2d");
    ctx.font = font;
    return ctx.measureText(text).width;
  }

  // Six significant digits: what the tooltips show (tests compare it with the JSON value).
  function fmt(v) {
    return v === null || v === undefined ? "" : String(Number(Number(v).toPrecision(6)));
  }

  function maxAbs(rows) {
    let m = 0;
    for (const row of rows) for (const v of row) if (v !== null && Math.abs(v) > m) m = Math.abs(v);
    return m || 1;
  }

  function signColour(v, scale) {
    const a = Math.min(1, Math.abs(v) / scale);
    return v >= 0 ? `rgba(214,39,40,${a.toFixed(3)})` : `rgba(31,95,214,${a.toFixed(3)})`;
  }

  function groupColour(g) {
    return g === null || g === undefined || g < 0 ? "#f2f2f2" : PALETTE[g % PALETTE.length];
  }

  function tooltip() {
    let tip = document.getElementById("jaxsim-tooltip");
    if (!tip) {
      tip = html("div", { id: "jaxsim-tooltip" }, document.body);
      html("span", { class: "tip-label" }, tip);
      tip.appendChild(document.createTextNode(" "));
      html("span", { class: "tip-value" }, tip);
    }
    return tip;
  }

  function withTooltip(node, label, value) {
    const move = (ev) => {
      const tip = tooltip();
      tip.style.left = `${ev.clientX + 12}px`;
      tip.style.top = `${ev.clientY + 12}px`;
    };
    node.addEventListener("mouseover", (ev) => {
      const tip = tooltip();
      tip.querySelector(".tip-label").textContent = label;
      tip.querySelector(".tip-value").textContent = fmt(value);
      tip.style.display = "block";
      move(ev);
    });
    node.addEventListener("mousemove", move);
    node.addEventListener("mouseout", () => { tooltip().style.display = "none"; });
  }

  function metaTable(root, meta) {
    const table = html("table", { class: "jx-meta" }, root);
    for (const [k, v] of meta) {
      const tr = html("tr", {}, table);
      html("th", {}, tr, k);
      html("td", {}, tr, v);
    }
  }

  // --- the paper-style view: text a on top, text b below, a line per token pair ---------------

  function drawPairs(box, level, colourMode, onChip) {
    box.textContent = "";
    const hasLines = Array.isArray(level.matrix);
    const pad = 8, gap = 12, chipH = 22, yA = 6, yB = hasLines ? 170 : 48;
    const rows = [level.labels_a, level.labels_b].map((labels) => {
      const widths = labels.map((w) => textWidth(w, FONT) + 12);
      const total = widths.reduce((s, w) => s + w, 0) + gap * Math.max(0, widths.length - 1);
      return { labels, widths, total };
    });
    const width = Math.max(rows[0].total, rows[1].total, 420) + 2 * pad;
    const root = svg("svg", { class: "pairs", width, height: yB + chipH + 6 }, box);
    const links = svg("g", { class: "links" }, root);
    const centres = [];
    rows.forEach((row, side) => {
      const y = side === 0 ? yA : yB;
      const sal = side === 0 ? level.saliency_a : level.saliency_b;
      const groups = side === 0 ? level.group_a : level.group_b;
      const scale = sal ? maxAbs([sal]) : 1;
      let x = pad + (width - 2 * pad - row.total) / 2;
      const xs = [];
      row.labels.forEach((label, i) => {
        const g = svg("g", { class: "chip", "data-side": side ? "b" : "a", "data-i": i }, root);
        let fill = "#ffffff";
        if (colourMode === "group" && groups) fill = groupColour(groups[i]);
        else if (sal && sal[i] !== null) fill = signColour(sal[i], scale);
        svg("rect", { x, y, width: row.widths[i], height: chipH, rx: 4, fill }, g);
        svg("text", { x: x + 6, y: y + 15, "font-size": 13 }, g, label);
        const what = sal ? (level.saliency_name || "saliency") : "group";
        withTooltip(g, `${label} (text ${side ? "b" : "a"}) ${what}:`,
          sal ? sal[i] : (groups ? groups[i] : null));
        g.addEventListener("mouseenter", () => onChip(root, side, i, true));
        g.addEventListener("mouseleave", () => onChip(root, side, i, false));
        xs.push(x + row.widths[i] / 2);
        x += row.widths[i] + gap;
      });
      centres.push(xs);
    });
    return { root, links, ax: centres[0], bx: centres[1], y1: yA + chipH, y2: yB };
  }

  function drawLinks(view, level, threshold, colourMode) {
    view.links.textContent = "";
    if (!Array.isArray(level.matrix)) return 0;
    const scale = maxAbs(level.matrix);
    let count = 0;
    level.matrix.forEach((row, i) => row.forEach((v, j) => {
      if (v === null || v === 0 || Math.abs(v) < threshold * scale) return;
      const r = Math.abs(v) / scale;
      const stroke = colourMode === "group" ? groupColour(level.group_a[i])
        : (v > 0 ? "rgb(214,39,40)" : "rgb(31,95,214)");
      const line = svg("line", {
        class: "link", x1: view.ax[i], y1: view.y1, x2: view.bx[j], y2: view.y2, stroke,
        "stroke-width": (0.6 + 5 * r).toFixed(2), "stroke-opacity": (0.2 + 0.8 * r).toFixed(3),
        "data-i": i, "data-j": j, "data-value": v,
      }, view.links);
      withTooltip(line, `${level.labels_a[i]} ~ ${level.labels_b[j]}:`, v);
      count += 1;
    }));
    return count;
  }

  function highlight(root, side, i, on) {
    root.classList.toggle("faded", on);
    for (const line of root.querySelectorAll(`.link[data-${side ? "j" : "i"}="${i}"]`)) {
      line.classList.toggle("hot", on);
    }
  }

  // --- heatmap, bars, top table ----------------------------------------------------------------

  function drawHeatmap(box, level, colourMode, valueName) {
    box.textContent = "";
    const na = level.labels_a.length, nb = level.labels_b.length;
    const cell = Math.max(10, Math.min(26, Math.floor(620 / Math.max(na, nb, 1))));
    const left = Math.max(...level.labels_a.map((w) => textWidth(w, SMALL)), 10) + 10;
    const top = Math.max(...level.labels_b.map((w) => textWidth(w, SMALL)), 10) * 0.87 + 14;
    const root = svg("svg", {
      class: "heatmap", width: left + nb * cell + 60, height: top + na * cell + 6,
    }, box);
    const scale = maxAbs(level.matrix);
    const selected = new Set((level.selected || []).map(([i, j]) => `${i},${j}`));
    level.labels_a.forEach((w, i) => svg("text", {
      x: left - 5, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", "font-size": 12,
    }, root, w));
    level.labels_b.forEach((w, j) => {
      const x = left + j * cell + cell / 2 + 3, y = top - 5;
      svg("text", { x, y, transform: `rotate(-60 ${x} ${y})`, "font-size": 12 }, root, w);
    });
    level.matrix.forEach((row, i) => row.forEach((v, j) => {
      if (v === null) return;
      let fill = signColour(v, scale);
      let opacity = 1;
      if (colourMode === "group") {
        fill = groupColour(level.group_a[i]);
        opacity = (0.25 + 0.75 * Math.abs(v) / scale).toFixed(3);
      }
      const rect = svg("rect", {
        class: selected.has(`${i},${j}`) ? "cell selected" : "cell", x: left + j * cell,
        y: top + i * cell, width: cell - 1, height: cell - 1, fill, "fill-opacity": opacity,
        "data-i": i, "data-j": j, "data-value": v,
      }, root);
      if (selected.has(`${i},${j}`)) { rect.setAttribute("stroke", "#000"); rect.setAttribute("stroke-width", 1.5); }
      withTooltip(rect, `${level.labels_a[i]} ~ ${level.labels_b[j]} ${valueName}:`, v);
    }));
    html("p", { class: "jx-note" }, box,
      colourMode === "group" ? `rows: text a, columns: text b; colour: group, opacity: ${valueName} / max (${fmt(scale)})`
        : `rows: text a, columns: text b; red > 0, blue < 0, opacity |${valueName}| / max (${fmt(scale)})`);
  }

  function drawBars(box, level) {
    box.textContent = "";
    const labels = level.labels_a.concat(level.labels_b);
    const values = level.saliency_a.concat(level.saliency_b);
    const bar = 20, h = 110, left = 8;
    const longest = Math.max(...labels.map((w) => textWidth(w, SMALL)), 10);
    const root = svg("svg", {
      class: "bars", width: left * 2 + labels.length * bar + longest * 0.5, height: h + longest * 0.87 + 18,
    }, box);
    const scale = maxAbs([values]);
    values.forEach((v, k) => {
      const side = k < level.labels_a.length ? "a" : "b";
      const len = Math.abs(v) / scale * (h - 10);
      const x = left + k * bar;
      const rect = svg("rect", {
        class: "bar", x: x + 2, y: h - len, width: bar - 4, height: Math.max(len, 0.5),
        fill: side === "a" ? "#ff7f0e" : "#1f77b4", "data-value": v, "data-side": side,
      }, root);
      withTooltip(rect, `${labels[k]} (text ${side}) ${level.saliency_name || "score"}:`, v);
      const tx = x + bar / 2 + 3, ty = h + 8;
      svg("text", { x: tx, y: ty, transform: `rotate(60 ${tx} ${ty})`, "font-size": 12 }, root, labels[k]);
    });
  }

  function drawTop(box, level, valueName, k) {
    box.textContent = "";
    const table = html("table", { class: "jx-table top" }, box);
    const entries = [];
    if (Array.isArray(level.matrix)) {
      const selected = new Set((level.selected || []).map(([i, j]) => `${i},${j}`));
      html("tr", {}, table).append(...["text a", "text b", valueName, ""].map((t) => html("th", {}, null, t)));
      level.matrix.forEach((row, i) => row.forEach((v, j) => {
        if (v !== null) entries.push([Math.abs(v), level.labels_a[i], level.labels_b[j], v, selected.has(`${i},${j}`)]);
      }));
    } else {
      html("tr", {}, table).append(...["text", "word", valueName, ""].map((t) => html("th", {}, null, t)));
      level.saliency_a.forEach((v, i) => entries.push([Math.abs(v), "a", level.labels_a[i], v, false]));
      level.saliency_b.forEach((v, i) => entries.push([Math.abs(v), "b", level.labels_b[i], v, false]));
    }
    entries.sort((p, q) => q[0] - p[0]);
    for (const [, a, b, v, sel] of entries.slice(0, k)) {
      const tr = html("tr", {}, table);
      html("td", {}, tr, a);
      html("td", {}, tr, b);
      html("td", { class: "num" }, tr, fmt(v));
      html("td", {}, tr, sel ? "selected" : "");
    }
  }

  function groupsTable(box, groups) {
    const table = html("table", { class: "jx-table groups" }, box);
    html("tr", {}, table).append(...["group", "importance", "words of a", "words of b"].map((t) => html("th", {}, null, t)));
    for (const g of groups) {
      const tr = html("tr", {}, table);
      const td = html("td", {}, tr);
      html("span", { class: "jx-swatch", style: `background:${groupColour(g.id)}` }, td);
      td.appendChild(document.createTextNode(String(g.id)));
      html("td", { class: "num" }, tr, fmt(g.importance));
      html("td", {}, tr, g.words_a.join(" "));
      html("td", {}, tr, g.words_b.join(" "));
    }
  }

  // --- one explanation -------------------------------------------------------------------------

  function renderExplanation(root, data) {
    const id = ++counter;
    const names = Object.keys(data.levels);
    const state = { level: data.default_level || names[0], threshold: data.default_threshold ?? 0.2 };
    const valueName = data.value_name || "relevance";
    const colourMode = data.colour || "sign";
    if (data.title) html("h1", {}, root, data.title);
    if (data.meta) metaTable(root, data.meta);
    const controls = html("div", { class: "jx-controls" }, root);
    if (names.length > 1) {
      html("span", {}, controls, "view:");
      for (const name of names) {
        const label = html("label", {}, controls);
        const input = html("input", { type: "radio", class: "level", name: `level-${id}`, value: name }, label);
        input.checked = name === state.level;
        label.appendChild(document.createTextNode(name === "word" ? " words" : " word pieces"));
        input.addEventListener("change", () => { state.level = name; draw(); });
      }
    }
    const anyMatrix = names.some((n) => Array.isArray(data.levels[n].matrix));
    let count = null, shown = null, slider = null;
    if (anyMatrix) {
      const label = html("label", {}, controls, "line threshold ");
      slider = html("input", { type: "range", class: "threshold", min: 0, max: 1, step: 0.01 }, label);
      slider.value = state.threshold;
      shown = html("span", { class: "threshold-value" }, label);
      count = html("span", { class: "line-count" }, controls);
    }
    html("h2", {}, root, "Pair view");
    const pairsBox = html("div", { class: "jx-scroll" }, root);
    const matrixTitle = html("h2", {}, root);
    const matrixBox = html("div", { class: "jx-scroll" }, root);
    html("h2", {}, root, "Top entries");
    const topBox = html("div", {}, root);
    if (data.groups) {
      html("h2", {}, root, "Groups");
      groupsTable(html("div", {}, root), data.groups);
    }
    for (const note of data.notes || []) html("p", { class: "jx-note" }, root, note);
    let view = null;

    function lines() {
      const level = data.levels[state.level];
      const n = drawLinks(view, level, state.threshold, colourMode);
      if (count) {
        shown.textContent = ` ≥ ${state.threshold.toFixed(2)} × max`;
        count.textContent = Array.isArray(level.matrix) ? `${n} lines` : "no pair matrix at this level";
        count.setAttribute("data-count", n);
      }
    }

    function draw() {
      const level = data.levels[state.level];
      view = drawPairs(pairsBox, level, colourMode, highlight);
      lines();
      if (Array.isArray(level.matrix)) {
        matrixTitle.textContent = `${valueName} matrix`;
        drawHeatmap(matrixBox, level, colourMode, valueName);
      } else {
        matrixTitle.textContent = `${level.saliency_name || "score"} per ${state.level === "word" ? "word" : "word piece"}`;
        drawBars(matrixBox, level);
      }
      drawTop(topBox, level, Array.isArray(level.matrix) ? valueName : (level.saliency_name || "score"), 12);
    }

    if (slider) slider.addEventListener("input", () => { state.threshold = Number(slider.value); lines(); });
    draw();
  }

  // --- corpus report ---------------------------------------------------------------------------

  function histogram(box, hist) {
    const w = 24, h = 120, left = 34;
    const root = svg("svg", { class: "histogram", width: left + hist.counts.length * w + 20, height: h + 40 }, box);
    const top = Math.max(...hist.counts, 1);
    hist.counts.forEach((c, k) => {
      const len = c / top * (h - 10);
      const rect = svg("rect", {
        class: "hbar", x: left + k * w + 1, y: h - len, width: w - 2, height: Math.max(len, 0.5),
        fill: "#4c78a8", "data-count": c,
      }, root);
      withTooltip(rect, `similarity ${fmt(hist.edges[k])} – ${fmt(hist.edges[k + 1])}: pairs`, c);
    });
    [0, hist.counts.length].forEach((k) => svg("text", {
      x: left + k * w, y: h + 16, "text-anchor": "middle", "font-size": 11,
    }, root, fmt(hist.edges[k])));
    svg("text", { x: left - 4, y: 14, "text-anchor": "end", "font-size": 11 }, root, String(top));
    svg("text", { x: left - 4, y: h, "text-anchor": "end", "font-size": 11 }, root, "0");
  }

  function wordPairTable(box, rows) {
    const table = html("table", { class: "jx-table word-pairs" }, box);
    html("tr", {}, table).append(...["#", "word a", "word b", "pairs", "total", "mean"].map((t) => html("th", {}, null, t)));
    rows.forEach((r, k) => {
      const tr = html("tr", {}, table);
      html("td", { class: "num" }, tr, String(k + 1));
      html("td", {}, tr, r.word_a);
      html("td", {}, tr, r.word_b);
      html("td", { class: "num" }, tr, String(r.count));
      html("td", { class: "num" }, tr, fmt(r.total));
      html("td", { class: "num" }, tr, fmt(r.mean));
    });
  }

  function drillDown(box, pairs, pageSize) {
    const order = pairs.map((_, k) => k);
    const state = { page: 0, current: 0 };
    const pager = html("div", { class: "jx-pager" }, box);
    const sort = html("select", { class: "sort" }, pager);
    for (const [v, t] of [["id", "by id"], ["sim-desc", "similarity ↓"], ["sim-asc", "similarity ↑"]]) {
      html("option", { value: v }, sort, t);
    }
    const prev = html("button", { class: "prev" }, pager, "◀ prev");
    const label = html("span", { class: "page-label" }, pager);
    const next = html("button", { class: "next" }, pager, "next ▶");
    const table = html("table", { class: "jx-table pairs-list" }, box);
    const detail = html("div", { class: "jx-detail" }, box);
    const pages = () => Math.max(1, Math.ceil(order.length / pageSize));

    function show(k) {
      state.current = k;
      detail.textContent = "";
      const p = pairs[k];
      html("h2", {}, detail, `pair ${p.id}: similarity ${fmt(p.similarity)}`);
      html("p", {}, detail, `a: ${p.text_a}`);
      html("p", {}, detail, `b: ${p.text_b}`);
      if (p.view) renderExplanation(html("div", { class: "jx-pair-view" }, detail), p.view);
      else html("p", { class: "jx-note" }, detail, "nothing stored to draw for this pair");
      for (const tr of table.querySelectorAll("tr.pick")) tr.classList.toggle("current", Number(tr.dataset.k) === k);
    }

    function page() {
      table.textContent = "";
      html("tr", {}, table).append(...["id", "similarity", "text a", "text b"].map((t) => html("th", {}, null, t)));
      for (const k of order.slice(state.page * pageSize, (state.page + 1) * pageSize)) {
        const p = pairs[k];
        const tr = html("tr", { class: "pick", "data-k": k, "data-id": p.id }, table);
        html("td", { class: "num" }, tr, String(p.id));
        html("td", { class: "num" }, tr, fmt(p.similarity));
        html("td", {}, tr, p.text_a);
        html("td", {}, tr, p.text_b);
        tr.classList.toggle("current", k === state.current);
        tr.addEventListener("click", () => show(k));
      }
      label.textContent = `page ${state.page + 1} of ${pages()} (${order.length} pairs)`;
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages() - 1;
    }

    prev.addEventListener("click", () => { state.page = Math.max(0, state.page - 1); page(); });
    next.addEventListener("click", () => { state.page = Math.min(pages() - 1, state.page + 1); page(); });
    sort.addEventListener("change", () => {
      const key = sort.value;
      order.sort((x, y) => key === "id" ? pairs[x].id - pairs[y].id
        : (key === "sim-desc" ? pairs[y].similarity - pairs[x].similarity : pairs[x].similarity - pairs[y].similarity));
      state.page = 0;
      page();
    });
    page();
    if (pairs.length) show(0);
  }

  function renderReport(root, data) {
    if (data.title) html("h1", {}, root, data.title);
    if (data.meta) metaTable(root, data.meta);
    html("h2", {}, root, "Similarity histogram");
    histogram(html("div", {}, root), data.similarity);
    html("h2", {}, root, `Most relevant word pairs overall (${data.word_pairs_source})`);
    wordPairTable(html("div", {}, root), data.top_word_pairs);
    html("h2", {}, root, "Part-of-speech pairs");
    if (data.pos) {
      drawHeatmap(html("div", { class: "jx-scroll pos" }, root), data.pos, "sign", data.pos.value_name);
    } else {
      html("p", { class: "jx-note pos-missing" }, root, data.pos_note);
    }
    html("h2", {}, root, "Pairs");
    if (data.pairs_note) html("p", { class: "jx-note" }, root, data.pairs_note);
    drillDown(html("div", { class: "drill" }, root), data.pairs, data.page_size || 20);
  }

  // What other renderers (assets/search.js) build on; they register their page kind in
  // window.jaxsimKinds before this script runs.
  window.jaxsim = { html, svg, fmt, maxAbs, signColour, withTooltip, textWidth, renderExplanation };

  function main() {
    let data = JSON.parse(document.getElementById("jaxsim-data").textContent);
    // The page already shows the title and summary as static HTML (jaxsim-static).
    if (document.getElementById("jaxsim-static")) data = Object.assign({}, data, { title: null, meta: null });
    const root = document.getElementById("jaxsim-root");
    const kinds = window.jaxsimKinds || {};
    if (kinds[data.kind]) kinds[data.kind](root, data);
    else if (data.kind === "report") renderReport(root, data);
    else renderExplanation(root, data);
    root.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
