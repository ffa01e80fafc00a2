"""Self-contained HTML for one pair explanation: no network, inline CSS, PNG as data URI."""

from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

import numpy as np

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table.rel{border-collapse:collapse;font-size:12px}
table.rel td,table.rel th{border:1px solid #ddd;padding:2px 4px;text-align:center}
table.rel th.row{text-align:right}
"""


def _colour(value: float) -> str:
    """Red for positive, blue for negative, opacity by |value| (value in [-1, 1])."""
    rgb = "220,40,40" if value > 0 else "40,80,220"
    return f"rgba({rgb},{min(1.0, abs(value)):.3f})"


def _figure_data_uri(result) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = result.save_png(Path(tmp) / "pair.png", kind="lines")
        data = path.read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode()


def pair_html(result) -> str:
    labels_a, labels_b, matrix = result.word_relevance()
    scale = float(np.abs(matrix).max()) or 1.0
    out = io.StringIO()
    out.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.method)}"
              f"</title><style>{_CSS}</style></head><body>")
    out.write(f"<h2>{html.escape(result.method)} · {html.escape(result.model)}</h2>")
    out.write(f"<p>similarity ({result.similarity_kind}) = {result.similarity:.4f}; "
              f"sum of relevance = {result.sum_relevance:.4f}</p>")
    out.write("<table class='rel'><tr><th></th>")
    out.writelines(f"<th>{html.escape(b)}</th>" for b in labels_b)
    out.write("</tr>")
    for i, a in enumerate(labels_a):
        out.write(f"<tr><th class='row'>{html.escape(a)}</th>")
        for j, b in enumerate(labels_b):
            value = float(matrix[i, j])
            tip = html.escape(f"{a} ~ {b}: {value:.6g}")
            out.write(f"<td title='{tip}' data-value='{value!r}' "
                      f"style='background:{_colour(value / scale)}'>{value / scale:+.2f}</td>")
        out.write("</tr>")
    out.write("</table>")
    out.write(f"<p><img alt='pair figure' src='{_figure_data_uri(result)}'></p></body></html>")
    return out.getvalue()


def word_pairs_html(result) -> str:
    """BTI-style result: word saliencies as shaded words, the selected pairs as a table."""
    out = io.StringIO()
    out.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.method)}"
              f"</title><style>{_CSS}</style></head><body>")
    out.write(f"<h2>{html.escape(result.method)} · {html.escape(result.model)}</h2>")
    out.write(f"<p>cosine similarity = {result.similarity:.4f}</p>")
    for name, words, sal in (("a", result.words_a, result.word_saliency_a),
                             ("b", result.words_b, result.word_saliency_b)):
        scale = float(np.max(sal)) or 1.0
        spans = " ".join(f"<span title='{float(s):.4f}' style='background:{_colour(s / scale)}'>"
                         f"{html.escape(w)}</span>" for w, s in zip(words, sal, strict=True))
        out.write(f"<p><b>text {name}</b>: {spans}</p>")
    out.write("<table class='rel'><tr><th>word a</th><th>word b</th><th>score</th></tr>")
    for p in result.word_pairs:
        out.write(f"<tr><td>{html.escape(p['word_a'])}</td><td>{html.escape(p['word_b'])}</td>"
                  f"<td>{p['score']:.4f}</td></tr>")
    out.write("</table></body></html>")
    return out.getvalue()
