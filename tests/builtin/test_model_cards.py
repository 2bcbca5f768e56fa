"""The model cards of the shipped SR weights state what the files hold: hash, size, precision,
parameter count, the packaging check, the selected iteration and its validation figures."""

from __future__ import annotations

import re

import pytest

from progface import plugins
from progface.jobs.runtime import load_method
from progface.weights import PACKAGE_WEIGHTS, load_safetensors, sha256_of
from tests.helpers import shipped_by_progface

# method -> (card, its column header, the rows that state each fact; matched by prefix)
CARDS = {
    "ours": ("pfsr_generator_psnr.md", None, {"parameters": "architecture", "check": "sha256",
             "selected": "selection", "validation": "selection", "iterations": "schedule"}),
    "vdsr": ("baselines.md", "VDSR", {"parameters": "network", "check": "check",
             "selected": "selected", "validation": "validation", "iterations": "iterations run"}),
    "urdgn": ("baselines.md", "URDGN", {"parameters": "network", "check": "check",
              "selected": "selected", "validation": "validation", "iterations": "iterations run"}),
}  # fmt: skip


def card_column(card: str, header: str | None) -> dict[str, str]:
    """The first Markdown table of ``card``: row name -> the cell of column ``header`` (None:
    the only value column)."""
    lines = (PACKAGE_WEIGHTS / card).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    column = 1 if header is None else table[0].index(header)
    return {row[0]: row[column] for row in table[2:]}


def cell(rows: dict[str, str], name: str) -> str:
    found = [text for key, text in rows.items() if key.startswith(name)]
    assert len(found) == 1, f"no single row {name!r} in {list(rows)}"
    return found[0]


def test_every_shipped_sr_method_has_a_card():
    shipped = {m.name for m in plugins.registries()["methods"] if shipped_by_progface(m)}
    assert shipped == set(CARDS)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_the_card_states_the_files_facts(name):
    card, header, where = CARDS[name]
    rows = card_column(card, header)
    spec = plugins.get("methods", name)
    path = PACKAGE_WEIGHTS / spec.weights.filename
    _, config = load_safetensors(path)

    # the hash: the card's, the spec's and the file's are one
    hashes = re.findall(r"`([0-9a-f]{64})`", cell(rows, "sha256"))
    assert hashes == [spec.weights.sha256] and sha256_of(path) == spec.weights.sha256

    # size and precision, and the fp16-against-fp32 check that chose the precision
    file = cell(rows, "file")
    stated = re.match(r"(\d+)\.(\d+) MB, (float\d+)", file)
    assert stated, file
    decimals = len(stated[2])
    megabytes = path.stat().st_size / 1e6
    assert abs(float(f"{stated[1]}.{stated[2]}") - megabytes) <= 0.5 * 10**-decimals, megabytes
    assert stated[3] == config["dtype"]
    check = config["fp16_check"]
    assert f"{check['psnr_fp16']:.4f}" in file and f"{check['psnr_fp32']:.4f}" in file

    # the parameter count: the card's, the registry's and the loaded network's
    model, _ = load_method(name, "cpu")
    count = sum(p.numel() for p in model.parameters())
    assert f"{count:,} parameters" in cell(rows, where["parameters"])
    assert spec.count_parameters() == count

    # the packaging check the tests re-measure (tests/builtin/test_shipped_methods.py)
    reference = config["reference"]
    text = cell(rows, where["check"])
    assert f"first {reference['faces']} faces" in text and f"{reference['psnr']:.4f} dB" in text
    assert f"method `{name}`" in text

    # training length, the selected iteration and its validation figures
    assert f"{config['iterations_run']:,}" in cell(rows, where["iterations"])
    assert f"batch {config['batch_size']}" in cell(rows, where["iterations"])
    val = config["val"]
    assert f"iteration {val['iteration']:,}" in cell(rows, where["selected"]).replace("**", "")
    figures = cell(rows, where["validation"]).replace("**", "")
    assert f"{val['psnr']:.2f}" in figures and f"SSIM {val['ssim']:.3f}" in figures
