"""Writes are whole or absent: a failed save leaves the previous output intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from atft_kedro.datasets.atomic import AtomicFileDataset


def _figure(title: str) -> Figure:
    fig = Figure()
    fig.add_subplot().set_title(title)
    return fig


def test_file_save_is_atomic(tmp_path: Path) -> None:
    dataset = AtomicFileDataset({"type": "text.TextDataset"}, str(tmp_path / "report.md"))
    dataset.save("first")
    assert dataset.load() == "first"
    with pytest.raises(Exception):
        dataset.save(12345)  # TextDataset cannot write an int: the save fails midway
    assert dataset.load() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"], "no staging file may be left behind"


def test_folder_of_figures_is_swapped_whole(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    dataset = AtomicFileDataset({"type": "matplotlib.MatplotlibDataset"}, str(plots))
    dataset.save({"a.png": _figure("a"), "b.png": _figure("b")})
    assert sorted(p.name for p in plots.iterdir()) == ["a.png", "b.png"]
    with pytest.raises(Exception):
        dataset.save({"c.png": _figure("c"), "d.png": "not a figure"})
    assert sorted(p.name for p in plots.iterdir()) == ["a.png", "b.png"]
    dataset.save({"c.png": _figure("c")})
    assert sorted(p.name for p in plots.iterdir()) == ["c.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]
