"""Writes are whole or absent: a failed save leaves the previous output intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from atft_kedro.datasets.atomic import AtomicFileDataset, atomic_target, atomic_write_bytes


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


def test_a_failure_mid_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "table.bin"
    atomic_write_bytes(target, b"previous")
    with pytest.raises(OSError, match="disk full"):
        with atomic_target(target) as staging:
            staging.write_bytes(b"half a ")
            raise OSError("disk full")
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.bin"], "no staging file may be left behind"
    atomic_write_bytes(target, b"next")
    assert target.read_bytes() == b"next"


def test_a_failure_mid_write_leaves_the_previous_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "arrays"
    with atomic_target(target) as staging:
        staging.mkdir()
        (staging / "a.npy").write_bytes(b"a")
    with pytest.raises(OSError, match="disk full"):
        with atomic_target(target) as staging:
            staging.mkdir()
            (staging / "b.npy").write_bytes(b"b")
            raise OSError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["a.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays"]


# ---------------------------------------------------------------- a save killed by SIGKILL
# The child process saves through the real dataset, announces "STAGED" from inside the save
# (at the moment named by ``hang_at``) and sleeps; the test then kills it with SIGKILL, as an
# out-of-memory kill or a power cut would, and checks what the next run finds.

_CHILD = r"""
import os, sys, time
import numpy as np, polars as pl
from atft_kedro.datasets import atomic, model_input_dataset
from atft_kedro.schemas.model_input import ModelInput

kind, target, hang_at = sys.argv[1], sys.argv[2], sys.argv[3]

def hang(*args, **kwargs):
    print("STAGED", flush=True)
    time.sleep(600)

calls = {"n": 0}
real_replace = os.replace
def replace_then_hang(src, dst):  # let the first rename of a folder swap happen, hang before the second
    calls["n"] += 1
    if calls["n"] == 2:
        hang()
    real_replace(src, dst)

if hang_at == "fsync":
    atomic.os.fsync = hang
elif hang_at == "between_renames":
    atomic.os.replace = replace_then_hang
if kind == "parquet":
    atomic.AtomicParquetDataset(filepath=target).save(pl.DataFrame({"x": list(range(1000))}))
elif kind == "figures":
    from matplotlib.figure import Figure
    fig = Figure(); fig.add_subplot().set_title("new")
    atomic.AtomicFileDataset({"type": "matplotlib.MatplotlibDataset"}, target).save({"new.png": fig})
elif kind == "model_input":
    d, n = 4, 3
    data = ModelInput(features=np.zeros((d, n, 2), np.float32), mask=np.ones((d, n), bool),
                      targets=np.zeros((d, n, 1), np.float32),
                      dates=np.arange(np.datetime64("2022-01-04"), np.datetime64("2022-01-08")),
                      codes=np.array(["13010", "13050", "72030"]), horizons=np.array([1], dtype=np.int64),
                      feature_names=("a", "b"), manifest_hash="new")
    model_input_dataset.ModelInputDataset(filepath=target).save(data)
"""


def _kill_mid_save(kind: str, target: Path, hang_at: str) -> None:
    """Run a save of ``kind`` to ``target`` in a child process and SIGKILL it at ``hang_at``."""
    import signal
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", _CHILD, kind, str(target), hang_at],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "STAGED", f"the child did not reach its save: {line!r} {child.stderr.read()}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_killed_parquet_save_leaves_the_previous_file_and_the_next_save_removes_its_staging_file(
    tmp_path: Path,
) -> None:
    import polars as pl

    from atft_kedro.datasets.atomic import AtomicParquetDataset

    target = tmp_path / "table.parquet"
    dataset = AtomicParquetDataset(filepath=str(target))
    dataset.save(pl.DataFrame({"x": [1, 2, 3]}))

    _kill_mid_save("parquet", target, "fsync")

    leftovers = _hidden(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".table.parquet.tmp-"), leftovers
    assert dataset.load()["x"].to_list() == [1, 2, 3]  # the staging file is ignored
    dataset.save(pl.DataFrame({"x": [4]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]
    assert dataset.load()["x"].to_list() == [4]


def test_a_folder_swap_killed_between_its_renames_is_restored_then_cleaned(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    dataset = AtomicFileDataset({"type": "matplotlib.MatplotlibDataset"}, str(plots))
    dataset.save({"a.png": _figure("a")})

    _kill_mid_save("figures", plots, "between_renames")

    assert not plots.exists(), "the kill should fall between the two renames"
    assert any(name.startswith(".plots.old-") for name in _hidden(tmp_path))
    from atft_kedro.datasets.atomic import remove_stale_staging

    remove_stale_staging(plots)  # what the next load or save of the dataset does first
    assert sorted(p.name for p in plots.iterdir()) == ["a.png"], "the previous output must be back in place"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]
    dataset.save({"c.png": _figure("c")})
    assert sorted(p.name for p in plots.iterdir()) == ["c.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]


def test_a_killed_model_input_save_leaves_the_previous_one_and_the_next_save_removes_the_staging_folder(
    tmp_path: Path,
) -> None:
    import numpy as np

    from atft_kedro.datasets import ModelInputDataset
    from atft_kedro.schemas.model_input import ModelInput

    target = tmp_path / "model_input"
    dataset = ModelInputDataset(filepath=str(target))

    def model_input(value: float, tag: str) -> ModelInput:
        d, n = 4, 3
        return ModelInput(features=np.full((d, n, 2), value, np.float32), mask=np.ones((d, n), bool),
                          targets=np.zeros((d, n, 1), np.float32),
                          dates=np.arange(np.datetime64("2022-01-04"), np.datetime64("2022-01-08")),
                          codes=np.array(["13010", "13050", "72030"]), horizons=np.array([1], dtype=np.int64),
                          feature_names=("a", "b"), manifest_hash=tag)

    dataset.save(model_input(1.0, "old"))

    _kill_mid_save("model_input", target, "fsync")

    leftovers = _hidden(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".model_input.writing-"), leftovers
    assert dataset.load().manifest_hash == "old"
    dataset.save(model_input(2.0, "next"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_input"]
    assert dataset.load().manifest_hash == "next"


def test_a_staging_file_of_a_running_writer_is_left_alone(tmp_path: Path) -> None:
    import os

    from atft_kedro.datasets.atomic import remove_stale_staging, staging_path

    target = tmp_path / "table.parquet"
    mine = staging_path(target, "tmp")  # this process is writing it now
    mine.write_bytes(b"partial")
    other = tmp_path / f".table.parquet.tmp-{os.getppid()}-abc123"  # a live process (the test runner's parent)
    other.write_bytes(b"partial")
    assert remove_stale_staging(target) == []
    assert mine.exists() and other.exists()
