"""The paper's result tables as layouts for ``progface bench`` (``--table3``, ``--ablation``).

Table 3 compares methods (rows Bilinear, URDGN, FSRGAN, FSRNet, VDSR, Ours); Table 2 is the
ablation of the paper's losses and of progressive training. Both report PSNR, SSIM and MS-SSIM
on aligned (CelebA) and unaligned (CelebA + AFLW) test faces. Our rows are printed in the paper's
order with the paper's figures beside them for reference: those come from the authors' models,
the full test sets and their ``eval.py`` (our ``pfsr`` protocol), so they match ours only when
the data, the training and the protocol do.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PAPER_TABLE2", "PAPER_TABLE3", "table2_markdown", "table3_markdown"]

METRICS = ("psnr", "ssim", "ms-ssim")

# (PSNR dB, SSIM, MS-SSIM); BMVC 2019 paper, Table 3.
PAPER_TABLE3: dict[str, dict[str, tuple[float, float, float]]] = {
    "aligned": {
        "bilinear": (20.75, 0.574, 0.782),
        "urdgn": (21.99, 0.622, 0.875),
        "fsrgan": (22.27, 0.601, 0.841),
        "fsrnet": (22.62, 0.641, 0.847),
        "vdsr": (22.94, 0.652, 0.880),
        "ours": (22.66, 0.685, 0.902),
    },
    "unaligned": {
        "bilinear": (21.86, 0.624, 0.795),
        "urdgn": (23.01, 0.643, 0.874),
        "fsrgan": (20.95, 0.515, 0.741),
        "fsrnet": (21.19, 0.607, 0.760),
        "vdsr": (23.70, 0.682, 0.882),
        "ours": (22.96, 0.695, 0.897),
    },
}
TABLE3_NAMES = {
    "bilinear": "Bilinear",
    "bicubic": "Bicubic",
    "urdgn": "URDGN [24]",
    "fsrgan": "FSRGAN [5]",
    "fsrnet": "FSRNet [5]",
    "vdsr": "VDSR [8]",
    "ours": "Ours",
}
TABLE3_ORDER = ("bilinear", "bicubic", "urdgn", "fsrgan", "fsrnet", "vdsr", "ours")

# Table 2 rows, keyed by the progressive recipe's presets (``progface train --preset ...``).
TABLE2_ROWS = {
    "table2-pixel-wgan": "L_pixel + L_WGAN",
    "table2-perceptual": "L_pixel + L_WGAN + L_feat",
    "table2-heatmap": "L_pixel + L_WGAN + L_feat + L_hm",
    "table2-no-progressive": "L_Ours - no progressive",
    "table2-full": "L_Ours",
}
PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float]]] = {
    "aligned": {
        "table2-pixel-wgan": (21.62, 0.616, 0.873),
        "table2-perceptual": (21.89, 0.649, 0.887),
        "table2-heatmap": (21.95, 0.650, 0.890),
        "table2-no-progressive": (22.24, 0.660, 0.893),
        "table2-full": (22.66, 0.685, 0.902),
    },
    "unaligned": {
        "table2-pixel-wgan": (21.62, 0.626, 0.863),
        "table2-perceptual": (22.26, 0.663, 0.884),
        "table2-heatmap": (22.53, 0.679, 0.892),
        "table2-no-progressive": (22.83, 0.680, 0.895),
        "table2-full": (22.96, 0.695, 0.897),
    },
}


def _unit(metric: str) -> str:
    from progface import plugins
    from progface.registry import UnknownNameError

    try:
        return plugins.get("metrics", metric).unit
    except UnknownNameError:
        return ""


def _cells(row: Mapping[str, float] | None, metrics: tuple[str, ...]) -> list[str]:
    if row is None:
        return ["-"] * len(metrics)
    out = []
    for m in metrics:
        v = row.get(m)
        wide = m == "psnr" or _unit(m) in ("dB", "%")
        out.append("-" if v is None else f"{v:.2f}" if wide else f"{v:.4f}")
    return out


def _paper_cells(values: tuple[float, float, float] | None) -> list[str]:
    if values is None:
        return ["-", "-", "-"]
    psnr, ssim, msssim = values
    return [f"{psnr:.2f}", f"{ssim:.3f}", f"{msssim:.3f}"]


def _table(
    header: str,
    rows: list[tuple[str, Mapping[str, float] | None, tuple[float, float, float] | None]],
    extra: tuple[str, ...],
    reference: str | None,
    not_run: Mapping[str, str],
) -> str:
    metrics = METRICS + extra
    titles = ["PSNR (dB)", "SSIM", "MS-SSIM"]
    titles += [f"{e} ({_unit(e)})" if _unit(e) else e for e in extra]
    if reference:
        titles += [f"paper {reference} PSNR", "paper SSIM", "paper MS-SSIM"]
    lines = [header, "", "| Method | " + " | ".join(titles) + " |"]
    lines.append("|---|" + "---:|" * len(titles))
    for label, ours, paper in rows:
        cells = _cells(ours, metrics) + (_paper_cells(paper) if reference else [])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [f"| {name} | not run: {why} |" for name, why in not_run.items()]
    return "\n".join(lines)


def _extra_metrics(summary: Mapping[str, Mapping[str, float]]) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    for row in summary.values():
        keys |= dict.fromkeys(k for k in row if k not in (*METRICS, "images", "seconds"))
    return tuple(keys)


def table3_markdown(result, reference: str | None = "aligned") -> str:
    """The comparison of ``result`` (a BenchResult) in the paper's Table 3 layout.

    Known methods come in the paper's row order under the paper's names, others after them;
    ``reference`` ("aligned", "unaligned" or None) adds the paper's figures for that test set
    (rows we did not run show "-" for ours).
    """
    if reference is not None and reference not in PAPER_TABLE3:
        raise ValueError(f"reference must be one of {', '.join(PAPER_TABLE3)} or None")
    paper = PAPER_TABLE3.get(reference or "", {})
    rows = []
    for m in TABLE3_ORDER:  # the paper's rows; with a reference, also those we did not run
        if m in result.summary or (m in paper and m not in result.not_run):
            rows.append((TABLE3_NAMES[m], result.summary.get(m), paper.get(m)))
    rows += [(m, row, None) for m, row in result.summary.items() if m not in TABLE3_ORDER]
    head = (f"Table 3 layout | protocol: {result.protocol} | data: {result.data} | "
            f"images: {result.images}")  # fmt: skip
    table = _table(head, rows, _extra_metrics(result.summary), reference, result.not_run)
    return "\n".join([table, "", *(f"- {n}" for n in result.notes)])


def table2_markdown(result, presets: Mapping[str, str], reference: str | None = "aligned") -> str:
    """Ablation rows of ``result`` in the paper's Table 2 layout.

    ``presets`` maps each row label of ``result`` to the preset its run was trained with; rows
    whose preset is a Table 2 row get its name and the paper's figures.
    """
    if reference is not None and reference not in PAPER_TABLE2:
        raise ValueError(f"reference must be one of {', '.join(PAPER_TABLE2)} or None")
    paper = PAPER_TABLE2.get(reference or "", {})
    order = list(TABLE2_ROWS)
    labels = sorted(
        (label for label in result.summary if label in presets),
        key=lambda lb: (order.index(presets[lb]) if presets[lb] in order else len(order), lb),
    )
    rows = []
    for label in labels:
        preset = presets[label]
        name = f"{TABLE2_ROWS[preset]} ({label})" if preset in TABLE2_ROWS else label
        rows.append((name, result.summary[label], paper.get(preset)))
    head = (f"Table 2 layout (ablation) | protocol: {result.protocol} | data: {result.data} | "
            f"images: {result.images}")  # fmt: skip
    not_run = {k: v for k, v in result.not_run.items() if k in presets}
    return _table(head, rows, _extra_metrics(result.summary), reference, not_run)
