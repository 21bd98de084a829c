"""Self-contained HTML pages: the one owner of the page helpers (inline base64 images, tables, sortable columns)
and the ``crossfuse eval --report`` page.

Every page is one file that opens offline: images are ``data:`` URIs, the style sheet and the few lines of sorting
script are inline, and nothing refers to another file or host (the tests check for ``http``/``src=`` to elsewhere).
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from crossfuse import io as cio

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1500px}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:2px 7px;font-size:13px;
text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}.thumbs td{text-align:center}
th.sort{cursor:pointer}th.sort:after{content:" \\2195";color:#999}td img{display:block;margin:auto}
.bad{color:#a00}.note{color:#555;font-size:13px}"""

# Click a header of a table of class "sortable" to sort its rows by that column (numbers by data-v, else text).
SORT_JS = """document.querySelectorAll("table.sortable").forEach(function(t){
t.querySelectorAll("th.sort").forEach(function(th,i){th.addEventListener("click",function(){
var b=t.tBodies[0],r=Array.from(b.rows),up=th.dataset.dir!=="up";th.dataset.dir=up?"up":"down";
function k(x){var c=x.cells[i],v=c.dataset.v;return v!==undefined?parseFloat(v):c.textContent;}
r.sort(function(x,y){var a=k(x),c=k(y);return (a<c?-1:a>c?1:0)*(up?1:-1);});
r.forEach(function(x){b.appendChild(x);});});});});"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def thumbnail_uri(image: np.ndarray | str | os.PathLike, width: int = 160, quality: int = 85) -> str:
    """A JPEG data URI of an image (array as crossfuse.io returns it, or a file) scaled to ``width`` pixels."""
    img = cio.read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
    img = cio.to_uint8(img)
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise cio.ImageError(f"could not encode a thumbnail of shape {img.shape}")
    return data_uri(buf.tobytes(), "image/jpeg")


def img_tag(uri: str, alt: str = "", style: str = "") -> str:
    extra = f' style="{style}"' if style else ""
    return f'<img src="{uri}" alt="{html.escape(alt, quote=True)}"{extra}>'


def fmt(v: object, nd: int = 4, nan: str = "nan") -> str:
    """A table cell's text: floats with ``nd`` decimals (``inf`` spelled out, NaN as ``nan``), other values
    escaped."""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return nan
        return f"{v:.{nd}f}" if math.isfinite(v) else str(float(v))
    return html.escape(str(v))


def td(v: object, nd: int = 4) -> str:
    """A cell; numbers carry their value in ``data-v`` so sortable tables sort them numerically."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        key = float(v) if math.isfinite(float(v)) else (1e308 if float(v) > 0 else -1e308)
        return f'<td data-v="{key!r}">{fmt(v, nd)}</td>'
    return f"<td>{v}</td>"  # pre-rendered HTML (escape text with fmt first)


def table(head: Iterable[str], rows: Iterable[Iterable[str]], *, cls: str = "", sortable: bool = False,
          head_html: bool = False) -> str:
    """An HTML table; ``head`` is plain text (escaped) unless ``head_html`` says it is already rendered HTML,
    ``rows`` are lists of rendered cells (:func:`td`)."""
    esc = (lambda h: h) if head_html else html.escape
    th = "".join(f'<th class="sort">{esc(h)}</th>' if sortable else f"<th>{esc(h)}</th>" for h in head)
    classes = " ".join(c for c in (cls, "sortable" if sortable else "") if c)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f'<table class="{classes}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def page(title: str, parts: Iterable[str], css: str = "") -> str:
    """A whole self-contained page: inline style sheet and the table-sorting script."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}{css}</style></head><body>" + "\n".join(parts) + f"<script>{SORT_JS}</script></body></html>")


# --------------------------------------------------------------------------------------------------- eval report


def _summary_table(result) -> str:
    from crossfuse.metrics import get_profile

    prof = get_profile(result.profile)
    mean, sd = result.mean, result.std
    rows = [[td(fmt(m)), td(mean[m]), td(sd[m]), td("higher" if prof.metrics[m].higher_is_better else "lower")]
            for m in result.metrics]
    return table(["metric", "mean", "std", "better"], rows)


def _image_rows(result, width: int) -> list[list[str]]:
    paths = dict(cio.match_folders(result.folders).items) if width > 0 else {}
    rows = []
    for stem, vals in result.rows:
        cells = [td(fmt(stem))]
        for role in ("ir", "vi", "fused") if width > 0 else ():
            try:
                cells.append(td(img_tag(thumbnail_uri(paths[stem][role], width), f"{stem} {role}")))
            except (cio.ImageError, KeyError, OSError):
                cells.append(td('<span class="bad">(unreadable)</span>'))
        rows.append(cells + [td(vals[m]) for m in result.metrics])
    return rows


def eval_report(result, *, width: int = 160, command: str = "") -> str:
    """The ``crossfuse eval --report`` page: profile stated, summary, sortable per-image rows with IR | VIS |
    fused thumbnails (``width`` pixels; 0 leaves them out), skipped images with their reasons."""
    f = result.folders
    parts = ["<h1>Fusion evaluation</h1>",
             f"<p><b>Profile:</b> {fmt(result.profile)} &mdash; {fmt(result.reference)}<br><b>Colour:</b> "
             f"{fmt(result.colour)}<br><b>Images:</b> {result.n} scored, {len(result.skipped)} skipped<br>"
             f"<b>Folders:</b> ir {fmt(f.get('ir', ''))}, vi {fmt(f.get('vi', ''))}, fused {fmt(f.get('fused', ''))}"
             "</p>"]
    if command:
        parts.append(f"<p><code>{fmt(command)}</code></p>")
    parts += ["<h2>Summary</h2>", _summary_table(result)]
    if result.conventions:
        parts.append('<ul class="note">' + "".join(f"<li>{fmt(c)}</li>" for c in result.conventions) + "</ul>")
    head = ["image", *(["IR", "VIS", "fused"] if width > 0 else []), *result.metrics]
    parts += ["<h2>Per image</h2>", "<p class='note'>Click a column header to sort.</p>",
              table(head, _image_rows(result, width), cls="thumbs", sortable=True)]
    if result.skipped:
        parts.append(f"<h2 class='bad'>Skipped ({len(result.skipped)})</h2><ul>"
                     + "".join(f"<li class='bad'>{fmt(n)}: {fmt(r)}</li>" for n, r in result.skipped) + "</ul>")
    return page(f"crossfuse eval ({result.profile})", parts)


def write_eval_report(result, path: str | os.PathLike, *, overwrite: bool = False, width: int = 160,
                      command: str = "") -> Path:
    """Write :func:`eval_report` atomically (never replacing a file unless ``overwrite``)."""
    return cio.write_bytes_atomic(path, eval_report(result, width=width, command=command), overwrite=overwrite)


__all__ = ["CSS", "SORT_JS", "data_uri", "thumbnail_uri", "img_tag", "fmt", "td", "table", "page", "eval_report",
           "write_eval_report"]
