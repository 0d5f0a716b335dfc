"""Each environment reads and writes under its own data root; ``make clean-data`` deletes only outputs.

``globals.data_root`` is ``data`` (base/local), ``data/test``, ``data/jquants`` and ``data/gpu``;
every catalog path of an environment lies under its root, so ``kedro run --env test`` never
touches the data of a base, jquants or gpu run (checked on the real ``kedro run --env test`` of
the shared ``test_env_run`` copy: nothing outside ``data/test``). ``atft_kedro.clean_data``
deletes what the catalog writes and keeps everything else, the ``files`` source folder included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro_project import PROJECT_ROOT

from atft_kedro.clean_data import catalog_filepaths, clean, output_paths
from atft_kedro.config import ProjectConfigLoader

ROOTS = {"local": "data", "test": "data/test", "jquants": "data/jquants", "gpu": "data/gpu"}


def _loader(env: str, conf: Path | None = None) -> ProjectConfigLoader:
    return ProjectConfigLoader(conf_source=str(conf or PROJECT_ROOT / "conf"), base_env="base",
                               default_run_env="local", env=env)


@pytest.mark.parametrize("env", sorted(ROOTS))
def test_every_catalog_path_lies_under_the_environment_root(env: str) -> None:
    loader = _loader(env)
    assert loader["globals"]["data_root"] == ROOTS[env]
    paths = catalog_filepaths(loader["catalog"])
    assert len(paths) >= 40
    outside = [p for p in paths if not p.startswith(ROOTS[env] + "/")]
    assert outside == [], f"{env}: catalog paths outside {ROOTS[env]}: {outside}"
    others = [root for other, root in ROOTS.items() if root != "data" and other != env]
    assert not [p for p in paths if any(p.startswith(root + "/") for root in others)]
    files_dir = loader["parameters"]["ingestion"]["files"]["directory"]
    assert files_dir == f"{ROOTS[env]}/01_raw/jquants_files"


@pytest.mark.slow
def test_a_test_environment_run_writes_only_under_its_root(test_env_run) -> None:
    written = [p.relative_to(test_env_run.path).as_posix() for p in (test_env_run.path / "data").rglob("*")
               if p.is_file()]
    assert any(p.startswith("data/test/08_reporting/") for p in written)
    assert any(p.startswith("data/test/01_raw/") for p in written)
    assert [p for p in written if not p.startswith("data/test/")] == []


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    return root


def _touch(root: Path, *relative: str) -> None:
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


OUTPUTS = ("data/test/02_intermediate/daily_quotes.parquet", "data/test/04_feature/features/table.json",
           "data/test/04_feature/.features.saving-1234-0123456789ab/table.json", "data/test/05_model_input/model_input/meta.json",
           "data/test/08_reporting/plots/ic.png", "data/test/01_raw/raw_daily_bars.parquet")
KEPT = ("data/test/01_raw/jquants_files/raw_daily_bars.parquet",  # the files source folder of env test
        "data/test/04_feature/my_notes.txt",                        # not a catalog output
        "data/04_feature/features/table.json",                       # base/local run
        "data/jquants/01_raw/raw_daily_bars.parquet",                # jquants run
        "data/gpu/06_models/atft_gat_fan.pt")


def test_clean_data_deletes_only_the_outputs_of_one_environment(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _touch(root, *OUTPUTS, *KEPT)
    deleted = clean(root, "test", dry_run=False)
    assert {p.relative_to(root.resolve()).as_posix() for p in deleted} >= {
        "data/test/02_intermediate/daily_quotes.parquet", "data/test/05_model_input/model_input",
        "data/test/08_reporting/plots", "data/test/04_feature/features",
        "data/test/04_feature/.features.saving-1234-0123456789ab"}
    left = sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*") if p.is_file())
    assert left == sorted(KEPT)


def test_clean_data_keeps_a_files_folder_inside_an_output_folder(tmp_path: Path) -> None:
    root = _project(tmp_path)
    params = root / "conf" / "test" / "parameters_ingestion.yml"
    base = (root / "conf" / "base" / "parameters_ingestion.yml").read_text()
    params.write_text(base.replace("${globals:data_root}/01_raw/jquants_files",
                                   "${globals:data_root}/08_reporting/plots/downloads"))
    _touch(root, "data/test/08_reporting/plots/ic.png", "data/test/08_reporting/plots/downloads/raw_topix.csv")
    _, paths = output_paths(root, "test")
    assert not [p for p in paths if p.name in ("plots", "downloads")]
    clean(root, "test", dry_run=False)
    assert (root / "data/test/08_reporting/plots/downloads/raw_topix.csv").exists()


def test_clean_data_dry_run_deletes_nothing_and_the_module_runs(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _touch(root, *OUTPUTS)
    result = subprocess.run([sys.executable, "-m", "atft_kedro.clean_data", "--env", "test", "--project", str(root),
                             "--dry-run"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "would delete" in result.stdout and "listed (dry run) for environment 'test'" in result.stdout
    assert all((root / name).exists() for name in OUTPUTS)


def test_clean_data_refuses_a_catalog_path_outside_the_root(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "conf" / "test" / "catalog.yml").write_text(
        "stray:\n  type: atft_kedro.datasets.atomic.AtomicJSONDataset\n  filepath: elsewhere/stray.json\n")
    with pytest.raises(ValueError, match="catalog path 'elsewhere/stray.json' of environment 'test' is outside"):
        clean(root, "test", dry_run=True)
