"""``progface bench --report html``: the bench results as one self-contained HTML file.

``OUT/report.html`` holds the summary table (mean ± standard deviation over faces, the best mean
of each metric in bold), one box plot per metric (inline SVG drawn here: no plotting library),
and the faces where the compared method gains most and least over the reference in the ranking
metric, each as LR | every method | HR with each face's eye strip enlarged below it; a click on
any image enlarges it. Images are PNG data URIs; CSS and the few lines of JS are inline, so the file opens
anywhere, offline, and can be mailed as it is.

The ranking metric is PSNR (else the first metric); the reference is ``bicubic`` when it was
run, else the first method; the compared method is the first other method (with one method,
its best and worst faces are shown). Memory stays bounded: the faces are chosen from the
per-image metrics once every method has run, and only those few are run again.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from progface import plugins
from progface.io.atomic import write_text_atomic
from progface.io.figures import to_pil
from progface.metrics.protocols import PSNR_CAP_DB

REPORT_FORMATS = ("html",)
FACES_EACH_WAY = 3  # faces with the largest and with the smallest gains
REFERENCE = "bicubic"
# the eye strip, as fractions (left, top, right, bottom) of an aligned face (CelebA framing)
EYES = (0.2, 0.34, 0.8, 0.6)
SHOWN = 192  # displayed width of a face and of its eye strip, CSS pixels
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")

# A method's SR faces for a few LR faces: ``rerun(label, lr [k,3,16,16]) -> sr [k,3,128,128]``.
Rerun = Callable[[str, torch.Tensor], torch.Tensor]


def check_report(report: str | None, out: str | Path | None) -> None:
    """Fail before any work on an unknown format, or a report without an output folder."""
    if report is None:
        return
    if report not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {report!r} (known: {', '.join(REPORT_FORMATS)})")
    if out is None:
        raise ValueError(f"a {report} report needs an output folder (--out)")


def write_report(out: Path, result, rows: list[dict[str, Any]], names: list[str],
                 hr: torch.Tensor, lr: torch.Tensor, rerun: Rerun) -> Path:  # fmt: skip
    """Write ``out/report.html`` for a bench run; returns its path.

    ``result`` is the run's ``BenchResult``, ``rows`` its per-image rows (image, method, metric,
    value) in face order, ``hr``/``lr`` the faces ``[N,3,128,128]``/``[N,3,16,16]`` in [0, 1].
    """
    methods = list(result.summary)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    values = _per_image(rows, methods, metrics, len(names))
    body = [
        "<h1>progface bench</h1>",
        f'<p class="facts">{_facts(result)}</p>',
        "<h2>Summary</h2>",
        _summary_table(result, methods, metrics, values),
    ]
    body += [f'<p class="not-run">{_e(n)}: not run: {_e(why)}</p>'
             for n, why in result.not_run.items()]  # fmt: skip
    body += ['<ul class="notes">', *(f"<li>{_e(n)}</li>" for n in result.notes), "</ul>"]
    if methods:
        body += ["<h2>Distributions over faces</h2>", '<div class="plots">']
        for m in metrics:
            spec = plugins.get("metrics", m)
            series = [values[(name, m)] for name in methods]
            body.append(_box_plot(_title(m), methods, series, spec.higher_is_better))
        body.append("</div>")
        body.append(
            '<p class="caption">Box: first to third quartile, line: median, diamond: mean, '
            "whiskers: the furthest faces within 1.5 IQR of the box, dots: faces beyond.</p>"
        )
        body += _face_sections(methods, metrics, values, names, hr, lr, rerun)
    return write_text_atomic(out / "report.html", _page("\n".join(body)))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _title(metric: str) -> str:
    from progface.jobs.bench import _metric_title

    return _metric_title(metric)


def _fmt(metric: str, value: float) -> str:
    from progface.jobs.bench import _fmt

    return _fmt(metric, value)


def _capped(value: float) -> float:
    """As bench's means count it: infinite PSNR (identical images) counts as the cap."""
    return min(float(value), PSNR_CAP_DB)


def _per_image(rows, methods, metrics, count) -> dict[tuple[str, str], list[float]]:
    """(method, metric) -> per-face values in face order."""
    values: dict[tuple[str, str], list[float]] = {(n, m): [] for n in methods for m in metrics}
    for row in rows:
        key = (row["method"], row["metric"])
        if key in values:
            values[key].append(_capped(row["value"]))
    if any(len(v) != count for v in values.values()):
        raise ValueError(f"the report needs one value per face ({count}) for each method")
    return values


def _facts(result) -> str:
    import progface

    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return " | ".join(
        [
            f"Protocol: <b>{_e(result.protocol)}</b>",
            f"data: <code>{_e(result.data)}</code>",
            f"images: {result.images}",
            f"progface {_e(progface.__version__)}",
            _e(date),
        ]
    )


def _std(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.stdev(finite) if len(finite) > 1 else 0.0


def _summary_table(result, methods, metrics, values) -> str:
    specs = {m: plugins.get("metrics", m) for m in metrics}
    best = {}
    for m in metrics:
        means = [result.summary[n][m] for n in methods if _finite(result.summary[n][m])]
        if means:
            best[m] = max(means) if specs[m].higher_is_better else min(means)
    head = "".join(
        f'<th data-metric="{_e(m)}">{_e(_title(m))} {"↑" if specs[m].higher_is_better else "↓"}'
        "</th>"
        for m in metrics
    )
    lines = [
        '<table id="summary">',
        f"<thead><tr><th>method</th>{head}<th>images</th><th>seconds</th></tr></thead>",
        "<tbody>",
    ]
    for n in methods:
        row = result.summary[n]
        cells = []
        for m in metrics:
            mean, std = row[m], _std(values[(n, m)])
            text = _fmt(m, mean) if _finite(mean) else "n/a"
            if m in best and mean == best[m]:
                text = f"<b>{text}</b>"
            cells.append(
                f'<td data-metric="{_e(m)}" data-mean="{mean!r}" data-std="{std!r}">'
                f'{text} <span class="std">± {_fmt(m, std)}</span></td>'
            )
        lines.append(
            f'<tr data-method="{_e(n)}"><th>{_e(n)}</th>{"".join(cells)}'
            f"<td>{row['images']}</td><td>{row['seconds']:.1f}</td></tr>"
        )
    lines += ["</tbody>", "</table>"]
    lines.append(
        '<p class="caption">Mean over faces (the protocol\'s figure) ± the standard deviation '
        "of the per-face values; the best mean of each metric in bold.</p>"
    )
    return "\n".join(lines)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# box plots


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``count`` of them."""
    span = hi - lo
    raw = span / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _box_stats(values: list[float]) -> dict[str, Any] | None:
    """Quartiles, Tukey whiskers (the furthest values within 1.5 IQR), outliers and mean; None
    without a finite value."""
    v = sorted(x for x in values if math.isfinite(x))
    if not v:
        return None
    if len(v) > 1:
        q1, med, q3 = statistics.quantiles(v, n=4, method="inclusive")
    else:
        q1 = med = q3 = v[0]
    reach = 1.5 * (q3 - q1)
    inside = [x for x in v if q1 - reach <= x <= q3 + reach]
    return {
        "q1": q1,
        "median": med,
        "q3": q3,
        "low": inside[0],
        "high": inside[-1],
        "outliers": [x for x in v if x < q1 - reach or x > q3 + reach],
        "mean": statistics.fmean(v),
    }


def _box_plot(title: str, labels: Sequence[str], series: Sequence[list[float]],
              higher_is_better: bool) -> str:  # fmt: skip
    """One metric's distribution per method as an inline ``<svg>`` box plot ("" when no
    method has a finite value)."""
    stats = [_box_stats(s) for s in series]
    if all(s is None for s in stats):
        return ""
    lo = min(min([s["low"], *s["outliers"]]) for s in stats if s is not None)
    hi = max(max([s["high"], *s["outliers"]]) for s in stats if s is not None)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    left, top, plot_h, slot = 58, 30, 200, 86
    width, height = max(left + slot * len(labels) + 12, 240), top + plot_h + 44

    def y(v: float) -> float:
        return round(top + plot_h * (hi - v) / (hi - lo), 2)

    arrow = "↑" if higher_is_better else "↓"
    parts = [
        f'<figure class="plot"><svg viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(title)} per method">',
        f"<title>{_e(title)}: distribution over faces</title>",
        f'<text x="{left}" y="16" class="t">{_e(title)} {arrow}</text>',
    ]
    for t in ticks:
        parts.append(
            f'<line x1="{left - 4}" x2="{width - 8}" y1="{y(t)}" y2="{y(t)}" class="grid"/>'
            f'<text x="{left - 7}" y="{y(t) + 4}" class="tick">{t:g}</text>'
        )
    for i, (label, s) in enumerate(zip(labels, stats)):
        cx, colour = left + slot * (i + 0.5), PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{cx}" y="{top + plot_h + 18}" class="label">{_e(label)}</text>')
        if s is None:  # no finite value: the label only
            continue
        parts += [
            f'<line x1="{cx}" x2="{cx}" y1="{y(s["high"])}" y2="{y(s["low"])}" class="whisker"/>',
            f'<line x1="{cx - 10}" x2="{cx + 10}" y1="{y(s["high"])}" y2="{y(s["high"])}" '
            'class="whisker"/>',
            f'<line x1="{cx - 10}" x2="{cx + 10}" y1="{y(s["low"])}" y2="{y(s["low"])}" '
            'class="whisker"/>',
            f'<rect class="box" data-method="{_e(label)}" x="{cx - 22}" y="{y(s["q3"])}" '
            f'width="44" height="{max(y(s["q1"]) - y(s["q3"]), 1)}" fill="{colour}"/>',
            f'<line x1="{cx - 22}" x2="{cx + 22}" y1="{y(s["median"])}" y2="{y(s["median"])}" '
            'class="median"/>',
            f'<path d="M{cx} {y(s["mean"]) - 4}l4 4l-4 4l-4 -4z" class="mean"/>',
            *(f'<circle cx="{cx}" cy="{y(v)}" r="2" class="outlier"/>' for v in s["outliers"]),
        ]
    parts.append("</svg></figure>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# face panels


def pick_faces(gains: list[float], count: int = FACES_EACH_WAY) -> tuple[list[int], list[int]]:
    """Indices of the faces with the largest gains (largest first) and with the smallest
    (smallest first); no face in both; faces whose gain is not a number are left out."""
    order = sorted((i for i, g in enumerate(gains) if not math.isnan(g)), key=lambda i: -gains[i])
    k = min(count, max(len(order) // 2, 1))
    largest = order[:k]
    smallest = [i for i in reversed(order) if i not in largest][: min(count, len(order) // 2)]
    return largest, smallest


def _face_sections(methods, metrics, values, names, hr, lr, rerun) -> list[str]:
    metric = "psnr" if "psnr" in metrics else metrics[0]
    sign = 1 if plugins.get("metrics", metric).higher_is_better else -1
    reference = REFERENCE if REFERENCE in methods else methods[0]
    subject = next((n for n in methods if n != reference), None)
    ref = values[(reference, metric)]
    if subject is None:  # one method: its best and worst faces
        gains = [sign * v for v in ref]
        what = f"{_e(_title(metric))} of {_e(reference)}"
        heads = (f"Best faces: {what}", f"Worst faces: {what}")
    else:
        sub = values[(subject, metric)]
        gains = [sign * (s - r) for s, r in zip(sub, ref)]
        what = f"{_e(_title(metric))} gains of {_e(subject)} over {_e(reference)}"
        heads = (f"Largest {what}", f"Smallest {what}")
    largest, smallest = pick_faces(gains)
    chosen = largest + smallest
    if not chosen:
        return []
    sr = {n: rerun(n, lr[chosen]) for n in methods}  # only these few faces run again
    at = {face: k for k, face in enumerate(chosen)}
    out = []
    for head, faces in zip(heads, (largest, smallest)):
        if not faces:
            continue
        out += [f"<h2>{head}</h2>", '<div class="faces">']
        for i in faces:
            tiles = [("LR 16px", lr[i])] + [(n, sr[n][at[i]]) for n in methods] + [("HR", hr[i])]
            caption = f"<b>{_e(names[i])}</b>"
            if subject is not None:
                caption += f" gain {gains[i] * sign:+.{4 if metric != 'psnr' else 2}f}"
            figures = " · ".join(f"{_e(n)} {_fmt(metric, values[(n, metric)][i])}" for n in methods)
            out.append(_face_panel(names[i], f"{caption} ({_e(_title(metric))}: {figures})", tiles))
        out.append("</div>")
    return out


def _png(image: torch.Tensor) -> str:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _eyes(image: torch.Tensor) -> torch.Tensor:
    """The eye strip of an aligned face; an LR face is enlarged (nearest) to 128 px first."""
    if image.shape[-1] < 128:
        image = F.interpolate(image[None].float(), size=(128, 128), mode="nearest")[0]
    h, w = image.shape[-2:]
    left, top, right, bottom = EYES
    return image[:, round(top * h) : round(bottom * h), round(left * w) : round(right * w)]


def _face_panel(name: str, caption: str, tiles: list[tuple[str, torch.Tensor]]) -> str:
    """One face: a column per tile, the face above its enlarged eye strip."""
    columns = []
    for label, image in tiles:
        alt = _e(f"{name}: {label}")
        strip = _eyes(image)
        height = round(SHOWN * strip.shape[-2] / strip.shape[-1])
        columns.append(
            f'<figure class="tile"><img class="zoomable face" src="{_png(image)}" alt="{alt}" '
            f'width="{SHOWN}" height="{SHOWN}"><img class="zoomable eyes" src="{_png(strip)}" '
            f'alt="{alt}, eyes" width="{SHOWN}" height="{height}">'
            f"<figcaption>{_e(label)}</figcaption></figure>"
        )
    return (
        f'<section class="face" data-image="{_e(name)}"><p>{caption}</p>'
        f'<div class="row">{"".join(columns)}</div></section>'
    )


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
  max-width: 1200px; padding: 0 16px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
code { font-size: 90%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 12px; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child { text-align: left; }
.std { color: #777; font-size: 90%; }
.caption, figcaption, .notes, .facts, .not-run { color: #555; font-size: 90%; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; }
svg text { font-size: 11px; fill: #333; }
svg .t { font-size: 13px; font-weight: 600; }
svg .tick { text-anchor: end; } svg .label { text-anchor: middle; }
svg .grid { stroke: #e6e6e6; } svg .whisker { stroke: #444; }
svg .box { stroke: #333; fill-opacity: 0.75; } svg .median { stroke: #111; stroke-width: 2; }
svg .mean { fill: #fff; stroke: #111; } svg .outlier { fill: none; stroke: #666; }
.faces { display: flex; flex-direction: column; gap: 18px; }
.face p { margin: 4px 0; }
.row { display: flex; gap: 6px; flex-wrap: wrap; align-items: flex-start; margin-bottom: 4px; }
.tile { text-align: center; }
.tile img { display: block; image-rendering: pixelated; cursor: zoom-in; margin-bottom: 3px; }
#zoom { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.85); display: flex;
  align-items: center; justify-content: center; cursor: zoom-out; }
#zoom[hidden] { display: none; }
#zoom img { width: min(90vw, 90vh); height: auto; image-rendering: pixelated; }
#zoom p { position: absolute; bottom: 12px; color: #eee; }
"""

_SCRIPT = """
const zoom = document.getElementById("zoom");
const big = zoom.querySelector("img");
const label = zoom.querySelector("p");
for (const img of document.querySelectorAll("img.zoomable")) {
  img.addEventListener("click", () => {
    big.src = img.src; big.alt = img.alt; label.textContent = img.alt; zoom.hidden = false;
  });
}
zoom.addEventListener("click", () => { zoom.hidden = true; });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") zoom.hidden = true; });
document.body.dataset.zoomReady = "1";
"""


def _page(body: str) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>progface bench report</title><style>{_STYLE}</style></head>",
            f"<body>\n{body}",
            '<div id="zoom" hidden><img alt=""><p></p></div>',
            f"<script>{_SCRIPT}</script>",
            "</body></html>\n",
        ]
    )
