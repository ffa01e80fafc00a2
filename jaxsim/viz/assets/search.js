// jaxsim search results page: ranked hits, each hit's pair view on click, two hits contrasted.
// Data format: jaxsim/viz/search.py. Registers the page kind "search"; jaxsim.js (inlined after
// this script) draws the page with it, and its helpers (window.jaxsim) draw the parts.
(function () {
  "use strict";
  const PUNCT = /^[.,;:!?%)\]}'"»”’]$/;

  function scaleOf(values) {
    let m = 0;
    for (const v of values) if (v !== null && Math.abs(v) > m) m = Math.abs(v);
    return m || 1;
  }

  function hitList(box, q, onPick) {
    const J = window.jaxsim;
    const all = [];
    for (const hit of q.hits) if (hit.words) all.push(...hit.doc_relevance);
    const scale = scaleOf(all);  // one scale for every hit, so shades compare across hits
    const list = J.html("ol", { class: "hits" }, box);
    q.hits.forEach((hit, k) => {
      const li = J.html("li", { class: "hit", "data-rank": hit.rank, "data-k": k }, list);
      const head = J.html("div", { class: "hit-head" }, li);
      J.html("span", { class: "hit-rank" }, head, `${hit.rank}.`);
      J.html("span", { class: "hit-score", "data-value": hit.score }, head, `${q.similarity_kind} ${J.fmt(hit.score)}`);
      J.html("span", { class: "hit-id" }, head, `id ${hit.id}`);
      const text = J.html("div", { class: "hit-text" }, li);
      if (hit.words) {
        hit.words.forEach((word, j) => {
          if (j > 0 && !PUNCT.test(word)) text.appendChild(document.createTextNode(" "));
          const v = hit.doc_relevance[j];
          const span = J.html("span", {
            class: "word", "data-j": j, "data-value": v, style: `background:${J.signColour(v, scale)}`,
          }, text, word);
          J.withTooltip(span, `${word} (hit ${hit.rank}) relevance to the query:`, v);
        });
      } else {
        text.textContent = hit.text;
      }
      li.addEventListener("click", () => onPick(k));
    });
    J.html("p", { class: "jx-note" }, box, q.explained
      ? `shade: relevance to the whole query, red > 0, blue < 0, opacity |relevance| / max (${J.fmt(scale)})`
      : "not explained: search with --explain (explain=True) to see why each document matches");
    return list;
  }

  function showHit(detail, list, q, k) {
    const J = window.jaxsim;
    detail.textContent = "";
    for (const li of list.querySelectorAll("li.hit")) li.classList.toggle("current", Number(li.dataset.k) === k);
    const hit = q.hits[k];
    if (!hit.view) {
      J.html("p", { class: "jx-note" }, detail, `hit ${hit.rank}: ${hit.text} (not explained)`);
      return;
    }
    J.html("p", { class: "jx-note" }, detail, "text a = the query, text b = the document");
    J.renderExplanation(J.html("div", { class: "jx-pair-view" }, detail), hit.view);
  }

  function contrastBars(box, q, a, b) {
    const J = window.jaxsim;
    box.textContent = "";
    const A = q.hits[a], B = q.hits[b];
    const labels = q.words.concat(["(special tokens)"]);
    const values = A.query_relevance.map((v, i) => v - B.query_relevance[i]);
    values.push(A.query_special - B.query_special);
    const scale = scaleOf(values);
    const rowH = 22, half = 230;
    const left = Math.max(...labels.map((w) => J.textWidth(w, "12px sans-serif")), 20) + 14;
    const root = J.svg("svg", { class: "contrast", width: left + 2 * half + 70, height: labels.length * rowH + 10 }, box);
    const centre = left + half;
    J.svg("line", { x1: centre, y1: 0, x2: centre, y2: labels.length * rowH + 6, stroke: "#999" }, root);
    values.forEach((v, i) => {
      const y = 4 + i * rowH;
      const len = Math.abs(v) / scale * (half - 80);  // room for the value's label on either side
      J.svg("text", { x: left - 6, y: y + 14, "text-anchor": "end", "font-size": 12 }, root, labels[i]);
      const rect = J.svg("rect", {
        class: "cbar", x: v >= 0 ? centre : centre - len, y, width: Math.max(len, 0.5), height: rowH - 6,
        fill: v >= 0 ? "rgb(214,39,40)" : "rgb(31,95,214)", "data-i": i, "data-value": v,
      }, root);
      J.withTooltip(rect, `${labels[i]}: R(q, A) − R(q, B) =`, v);
      J.svg("text", { x: v >= 0 ? centre + len + 4 : centre - len - 4, y: y + 13,
        "text-anchor": v >= 0 ? "start" : "end", "font-size": 11, fill: "#555" }, root, J.fmt(v));
    });
    const total = values.reduce((s, v) => s + v, 0);
    J.html("p", { class: "contrast-sum" }, box,
      `A = hit ${A.rank} (${q.similarity_kind} ${J.fmt(A.score)}), B = hit ${B.rank} (${J.fmt(B.score)}): ` +
      `the bars add up to ${J.fmt(total)} = sum of relevance A − B ` +
      `(${J.fmt(A.sum_relevance)} − ${J.fmt(B.sum_relevance)}). Red: the query word ties more ` +
      "relevance to A, blue: to B.");
  }

  function contrast(box, q) {
    const J = window.jaxsim;
    const explained = q.hits.map((h, k) => [h, k]).filter(([h]) => h.view);
    if (explained.length < 2) {
      J.html("p", { class: "jx-note contrast-missing" }, box, "needs two explained hits");
      return;
    }
    const controls = J.html("div", { class: "jx-controls" }, box);
    const pick = (name, initial) => {
      const label = J.html("label", {}, controls, `${name}: `);
      const select = J.html("select", { class: `contrast-${name.toLowerCase()}` }, label);
      for (const [h, k] of explained) {
        const option = J.html("option", { value: k }, select, `${h.rank}. ${h.text.slice(0, 60)}`);
        option.selected = k === initial;
      }
      return select;
    };
    const selA = pick("A", explained[0][1]), selB = pick("B", explained[1][1]);
    const bars = J.html("div", { class: "jx-scroll" }, box);
    const draw = () => contrastBars(bars, q, Number(selA.value), Number(selB.value));
    selA.addEventListener("change", draw);
    selB.addEventListener("change", draw);
    draw();
  }

  function renderQuery(box, q) {
    const J = window.jaxsim;
    box.textContent = "";
    J.html("h2", {}, box, `Query: ${q.query}`);
    J.html("p", { class: "jx-note" }, box,
      `Hits ranked by ${q.similarity_kind} similarity. Hover a word for its relevance to the query; click a hit ` +
      "for its query-word × document-word view.");
    const detail = document.createElement("div");
    const list = hitList(box, q, (k) => {
      showHit(detail, list, q, k);
      detail.scrollIntoView({ block: "start" });
    });
    J.html("h2", {}, box, "Why does A outrank B?");
    J.html("p", { class: "jx-note" }, box,
      "Per query word: its relevance summed over document A minus the same over document B.");
    contrast(J.html("div", { class: "contrast-box" }, box), q);
    J.html("h2", {}, box, "Selected hit");
    detail.className = "jx-detail hit-detail";
    box.appendChild(detail);
    if (q.hits.length) showHit(detail, list, q, 0);
  }

  function renderSearch(root, data) {
    const J = window.jaxsim;
    const box = document.createElement("div");
    if (data.queries.length > 1) {
      const controls = J.html("div", { class: "jx-controls" }, root);
      const label = J.html("label", {}, controls, "query: ");
      const select = J.html("select", { class: "query" }, label);
      data.queries.forEach((q, n) => J.html("option", { value: n }, select, `${n + 1}. ${q.query}`));
      select.addEventListener("change", () => renderQuery(box, data.queries[Number(select.value)]));
    }
    root.appendChild(box);
    renderQuery(box, data.queries[0]);
    for (const note of data.notes || []) J.html("p", { class: "jx-note" }, root, note);
  }

  window.jaxsimKinds = Object.assign(window.jaxsimKinds || {}, { search: renderSearch });
})();
