"""``run_bench(..., report="html")``: one self-contained HTML file that agrees with the results."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from progface.jobs.bench import _fmt, run_bench
from progface.jobs.report import _box_plot, _box_stats, pick_faces
from tests.jobs.conftest import smooth_face

CHROMIUM = shutil.which("chromium") or shutil.which("/usr/bin/chromium")


class Page(HTMLParser):
    """What the tests read from a report: summary cells, images, links, plots, face panels."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict] = {}  # (method, metric) -> attrs + text
        self.images: list[dict[str, str]] = []
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value) of src/href
        self.boxes: list[list[str]] = []  # per <svg>: the methods of its boxes
        self.faces: list[str] = []  # data-image of the face panels, in page order
        self.headings: list[str] = []
        self.tags: list[str] = []
        self._method = self._cell = None
        self._bold = False
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href"):
            if key in a:
                self.refs.append((tag, key, a[key] or ""))
        if tag == "tr" and "data-method" in a:
            self._method = a["data-method"]
        elif tag == "td" and "data-metric" in a:
            self._cell = {**a, "text": "", "bold": False}
            self.cells[(self._method, a["data-metric"])] = self._cell
        elif tag == "b" and self._cell is not None:
            self._cell["bold"] = True
        elif tag == "img":
            self.images.append(a)
        elif tag == "svg":
            self.boxes.append([])
        elif tag == "rect" and a.get("class") == "box":
            self.boxes[-1].append(a["data-method"])
        elif tag == "section" and a.get("class") == "face":
            self.faces.append(a["data-image"])
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_h2:
            self.headings[-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decode(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    """bilinear and bicubic on 5 smooth synthetic faces, with the HTML report."""
    root = tmp_path_factory.mktemp("report")
    data = root / "hr"
    data.mkdir()
    for i in range(5):
        smooth_face(20 + i).save(data / f"f{i}.png")
    out = root / "out"
    result = run_bench(["bilinear", "bicubic"], data, out=out, metrics=("psnr", "ssim"),
                       report="html", progress=False, device="cpu")  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "results.csv")))
    return result, data, out, summary, rows, parse(out / "report.html")


def _values(rows, method, metric):
    return [float(r["value"]) for r in rows if r["method"] == method and r["metric"] == metric]


def test_table_agrees_with_summary_json_and_results_csv(bench_report):
    _, _, _, summary, rows, page = bench_report
    assert set(page.cells) == {(m, k) for m in ("bilinear", "bicubic") for k in ("psnr", "ssim")}
    for (method, metric), cell in page.cells.items():
        mean = summary["methods"][method][metric]
        assert float(cell["data-mean"]) == mean  # the very number in summary.json
        shown, std = cell["text"].split("±")
        assert shown.strip() == _fmt(metric, mean)
        expected_std = float(np.std(_values(rows, method, metric), ddof=1))
        assert float(cell["data-std"]) == pytest.approx(expected_std, rel=1e-9)
        assert std.strip() == _fmt(metric, expected_std)
    for metric in ("psnr", "ssim"):
        best = max(("bilinear", "bicubic"), key=lambda m: summary["methods"][m][metric])
        assert [m for m in ("bilinear", "bicubic") if page.cells[(m, metric)]["bold"]] == [best]


def test_one_box_plot_per_metric_with_a_box_per_method(bench_report):
    page = bench_report[-1]
    assert page.boxes == [["bilinear", "bicubic"], ["bilinear", "bicubic"]]


def test_faces_with_largest_and_smallest_gains_over_bicubic(bench_report):
    _, data, _, _, rows, page = bench_report
    names = [r["image"] for r in rows if r["method"] == "bicubic" and r["metric"] == "psnr"]
    gains = [
        a - b for a, b in zip(_values(rows, "bilinear", "psnr"), _values(rows, "bicubic", "psnr"))
    ]
    order = sorted(range(5), key=lambda i: -gains[i])
    # 5 faces: the 2 largest gains (largest first), then the 2 smallest (smallest first)
    assert page.faces == [names[i] for i in (*order[:2], *order[::-1][:2])]
    assert page.headings[-2:] == [
        "Largest PSNR (dB) gains of bilinear over bicubic",
        "Smallest PSNR (dB) gains of bilinear over bicubic",
    ]
    # 4 faces x (LR, bilinear, bicubic, HR) x (face, eye strip), all inline PNGs
    faces = [i for i in page.images if "face" in i.get("class", "").split()]
    eyes = [i for i in page.images if "eyes" in i.get("class", "").split()]
    assert len(faces) == len(eyes) == 16
    assert len([i for i in page.images if i.get("src")]) == 32
    tiles = {(i["alt"].split(": ")[0], i["alt"].split(": ")[1]): i["src"] for i in faces}
    for name in page.faces:
        lr, hr = decode(tiles[(name, "LR 16px")]), decode(tiles[(name, "HR")])
        assert lr.size == (16, 16) and hr.size == (128, 128)
        assert np.array_equal(np.asarray(hr), np.asarray(Image.open(data / name).convert("RGB")))
        for method in ("bilinear", "bicubic"):  # the re-run faces are the benchmarked faces
            sr = np.asarray(decode(tiles[(name, method)]), dtype=np.float64) / 255
            mse = ((sr - np.asarray(hr, dtype=np.float64) / 255) ** 2).mean()
            value = next(
                float(r["value"])
                for r in rows
                if (r["image"], r["method"], r["metric"]) == (name, method, "psnr")
            )
            assert -10 * math.log10(mse) == pytest.approx(value, abs=0.05)
    assert {decode(i["src"]).size for i in eyes} == {(76, 33)}  # the eye strip at 128 px


def test_report_is_self_contained(bench_report):
    out, page = bench_report[2], bench_report[-1]
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "link" not in page.tags and "iframe" not in page.tags
    assert "url(" not in text and "@import" not in text
    for tag, attribute, value in page.refs:
        assert value.startswith("data:image/png;base64,"), (tag, attribute, value[:40])
    assert page.tags.count("script") == 1 and not any(t == "script" for t, _, _ in page.refs)


def test_one_method_shows_its_best_and_worst_faces(hr_folder, tmp_path):
    run_bench(["bicubic"], hr_folder, out=tmp_path, metrics=("ssim",), report="html",
              progress=False, device="cpu")  # fmt: skip
    page = parse(tmp_path / "report.html")
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    by_ssim = sorted(rows, key=lambda r: -float(r["value"]))
    assert page.faces == [r["image"] for r in (*by_ssim[:2], *by_ssim[::-1][:2])]
    assert page.headings[-2:] == ["Best faces: SSIM of bicubic", "Worst faces: SSIM of bicubic"]
    assert len([i for i in page.images if i.get("src")]) == 4 * 3 * 2


def test_the_report_decodes_each_face_it_shows_once(hr_folder, tmp_path, monkeypatch):
    """The bench decodes each file once; the report reads its few faces again, HR and LR from
    one decode (it used to decode each twice)."""
    import progface.jobs.bench as bench

    decoded = []
    real = bench.load_face
    monkeypatch.setattr(bench, "load_face", lambda path, *a, **k: decoded.append(path.name)
                        or real(path, *a, **k))  # fmt: skip
    run_bench(["bicubic"], hr_folder, out=tmp_path, metrics=("ssim",), report="html",
              progress=False, device="cpu")  # fmt: skip
    shown = parse(tmp_path / "report.html").faces
    readable = [f"f{i}.png" for i in range(5)]
    assert sorted(decoded[:6]) == sorted(readable + ["broken.png"])  # the bench's pass
    assert sorted(decoded[6:]) == sorted(set(shown)) and len(set(shown)) == 4


def test_pick_faces_never_shows_a_face_twice():
    assert pick_faces([0.5, -1.0, 2.0, float("nan"), 0.0], count=3) == ([2, 0], [1, 4])
    assert pick_faces([1.0], count=3) == ([0], [])
    assert pick_faces([float("nan")]) == ([], [])


def test_box_statistics_known_answers():
    stats = _box_stats([4.0, 1.0, 3.0, 100.0, 2.0, float("nan")])
    assert stats == {"q1": 2.0, "median": 3.0, "q3": 4.0, "low": 1.0, "high": 4.0,
                     "outliers": [100.0], "mean": 22.0}  # fmt: skip
    assert _box_stats([float("nan")]) is None
    plot = _box_plot("x", ["a", "b"], [[float("nan")], [1.0, 2.0, 3.0]], True)
    assert plot.count('class="box"') == 1 and ">a</text>" in plot  # a keeps its label
    assert _box_plot("x", ["a"], [[float("nan")]], True) == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"report": "pdf", "out": "o"}, "unknown report format 'pdf'"), ({"report": "html"}, "--out")],
)
def test_bad_report_arguments_fail_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_bench(["bicubic"], tmp_path / "no-such-folder", progress=False, **kwargs)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_headless_chromium_renders_the_report(bench_report, tmp_path):
    out, page = bench_report[2], bench_report[-1]
    url = (out / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Page()
    rendered.feed(dom.stdout)
    assert set(rendered.cells) == set(page.cells)
    assert len([i for i in rendered.images if i.get("src")]) == 32
    assert rendered.boxes == page.boxes
    assert 'data-zoom-ready="1"' in dom.stdout  # the inline script ran to its end
    shot = tmp_path / "report.png"
    proc = subprocess.run([*flags, "--window-size=1200,1800", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1800, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000  # faces and plots, not blank


def test_bench_command_writes_the_report_when_asked(hr_folder, tmp_path):
    from click.testing import CliRunner

    from progface.cli import cli

    out = tmp_path / "cli-report"
    args = ["bench", "--methods", "bilinear,bicubic", "--data", str(hr_folder), "--out", str(out),
            "--metrics", "psnr", "--report", "html", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<table" in page and "bicubic" in page and "report.html" in result.output
    bad = CliRunner().invoke(cli, [*args[:-4], "--report", "pdf"])
    assert bad.exit_code == 2 and "pdf" in bad.output
