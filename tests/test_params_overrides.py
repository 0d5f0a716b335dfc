"""``kedro run --params "a.b.c=v"`` changes exactly that key; unknown blocks, keys and wrong types are errors.

Fast tests drive the project's config loader with runtime parameters parsed by Kedro's own CLI
parser (``_split_params``, what ``kedro run --params`` calls) and compare the whole resolved
parameters with and without the override. The slow tests run the real ``kedro run`` in a copy of
the project that holds the data of the shared ``kedro run --env test`` (``test_env_run``), with a
test-only hook added to the copy's ``settings.py`` that records the ``params:`` inputs each node
receives (after the project's own hooks ran) and, for the nodes listed in a file, stops the run
there. Each README/runbook example is one of them.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.framework.cli.utils import _split_params
from kedro_project import PROJECT_ROOT, RUN_TIMEOUT_S, copy_project

from atft_kedro.config import (
    RUNNER_BLOCKS,
    ProjectConfigLoader,
    UnknownParameterError,
    check_parameters,
    merge_overrides,
    read_blocks,
)

# ------------------------------------------------------------------------------ fast tests


def _cli(text: str) -> dict[str, Any]:
    """``--params`` text as ``kedro run`` hands it to the session."""
    return _split_params(None, None, text)


def _loader(env: str, params: str | None = None, conf: Path | None = None) -> ProjectConfigLoader:
    return ProjectConfigLoader(conf_source=str(conf or PROJECT_ROOT / "conf"), base_env="base",
                               default_run_env="local", env=env, runtime_params=_cli(params) if params else None)


def _with(params: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(params)
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[leaf] = value
    return out


@pytest.fixture(scope="module")
def pipelines() -> dict:
    from kedro.framework.project import configure_project

    from atft_kedro.pipeline_registry import register_pipelines

    configure_project("atft_kedro")
    return register_pipelines()


@pytest.mark.parametrize(("env", "override", "path", "value"), [
    ("test", "training.max_epochs=3", "training.max_epochs", 3),
    ("test", "ingestion.files.directory=/srv/jquants/bulk", "ingestion.files.directory", "/srv/jquants/bulk"),
    ("test", "normalization.purge_days=30", "normalization.purge_days", 30),
    ("test", "ingestion.files.format=csv", "ingestion.files.format", "csv"),
    ("local", "ingestion.source=files", "ingestion.source", "files"),
    ("jquants", "ingestion.jquants.max_retries=2", "ingestion.jquants.max_retries", 2),
    ("test", "training.grad_clip=0.5", "training.grad_clip", 0.5),
    ("test", "model.gat.enabled=false", "model.gat.enabled", False),
    ("test", "model.gat.heads=null", "model.gat.heads", None),
])
def test_an_override_changes_exactly_its_key(env: str, override: str, path: str, value: Any) -> None:
    plain = _loader(env)["parameters"]
    overridden = _loader(env, override)["parameters"]
    assert overridden == _with(plain, path, value)
    leaf: Any = overridden
    for part in path.split("."):
        leaf = leaf[part]
    assert type(leaf) is type(value)  # YAML types: 3 is an int, false a bool, null None, 0.5 a float


def test_several_overrides_in_one_flag_keep_every_sibling() -> None:
    plain = _loader("test")["parameters"]
    overridden = _loader("test", "training.max_epochs=4, normalization.purge_days=25,horizons=[5]")["parameters"]
    expected = _with(_with(_with(plain, "training.max_epochs", 4), "normalization.purge_days", 25), "horizons", [5])
    assert overridden == expected


def test_merge_overrides_refuses_a_key_below_a_value() -> None:
    with pytest.raises(UnknownParameterError, match=r"'horizons.x'.*'horizons' is list"):
        merge_overrides({"horizons": [1, 5]}, {"horizons": {"x": 1}})
    assert merge_overrides({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"b": None, "c": 2}}


def test_known_blocks_are_what_the_registered_pipelines_read(pipelines: dict) -> None:
    blocks = read_blocks(pipelines)
    assert {"ingestion", "simulator", "training", "model", "loss", "normalization", "evaluation",
            "horizons"} <= blocks
    # every block of every shipped environment is read by some pipeline, or by the Dask runner
    for env in ("local", "test", "gpu", "jquants"):
        assert set(_loader(env)["parameters"]) <= blocks | RUNNER_BLOCKS, env
    assert RUNNER_BLOCKS == {"dask"} and "dask" not in blocks


def _check(loader: ProjectConfigLoader, pipelines: dict) -> None:
    check_parameters(loader["parameters"], pipelines, pipelines, loader.parameter_sources(), loader.env)


@pytest.mark.parametrize("env", ["local", "test", "gpu", "jquants"])
def test_shipped_environments_pass_the_check(env: str, pipelines: dict) -> None:
    _check(_loader(env), pipelines)


@pytest.mark.parametrize(("override", "expected"), [
    ("trainng.max_epochs=3", r"'trainng' \(from --params \"trainng.max_epochs=3\"\): unknown parameter block.*"
                             r"did you mean 'training'"),
    ("training.max_epochz=3", r"'training.max_epochz' \(from --params \"training.max_epochz=3\"\): unknown key"),
    ("training.max_epochs=three", r"'training.max_epochs' \(from --params \"training.max_epochs=three\"\): "
                                  r"Input should be a valid integer"),
    ("ingestion.files.format=xlsx", r"'ingestion.files.format' \(from --params \"ingestion.files.format=xlsx\"\)"),
    ("normalization.chain.test_fraction=[1]", r"'normalization.chain.test_fraction' \(from --params"),
])
def test_bad_overrides_name_the_key_and_the_flag(override: str, expected: str, pipelines: dict) -> None:
    with pytest.raises(UnknownParameterError, match=expected):
        _check(_loader("test", override), pipelines)


def _conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    return conf


def test_a_misspelt_block_in_a_file_names_the_file(tmp_path: Path, pipelines: dict) -> None:
    conf = _conf_copy(tmp_path)
    (conf / "test" / "parameters_extra.yml").write_text("trainng:\n  max_epochs: 3\n")
    with pytest.raises(UnknownParameterError,
                       match=r"'trainng' \(from conf/test/parameters_extra.yml\): unknown parameter block"):
        _check(_loader("test", conf=conf), pipelines)


def test_a_misspelt_or_mistyped_key_in_a_file_names_the_file(tmp_path: Path, pipelines: dict) -> None:
    conf = _conf_copy(tmp_path)
    path = conf / "base" / "parameters_ingestion.yml"
    params = yaml.safe_load(path.read_text())
    params["ingestion"]["files"]["formatt"] = "csv"
    params["ingestion"]["jquants"]["max_retries"] = "many"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(UnknownParameterError) as caught:
        _check(_loader("local", conf=conf), pipelines)
    message = str(caught.value)
    assert "'ingestion.files.formatt' (from conf/base/parameters_ingestion.yml): unknown key" in message
    assert "'ingestion.jquants.max_retries' (from conf/base/parameters_ingestion.yml): Input should be a valid " \
           "integer" in message
    # parameters merge key by key: the jquants environment keeps base's other ingestion keys, so the
    # same mistakes are reported there too, still named in the base file
    with pytest.raises(UnknownParameterError) as caught:
        _check(_loader("jquants", conf=conf), pipelines)
    assert "'ingestion.files.formatt' (from conf/base/parameters_ingestion.yml): unknown key" in str(caught.value)


def test_sources_follow_the_merge(tmp_path: Path) -> None:
    sources = _loader("test", "training.max_epochs=3")
    found = sources.parameter_sources()
    assert found["training.max_epochs"] == '--params "training.max_epochs=3"'
    assert found["training.lr"] == "conf/test/parameters_training.yml"
    assert found["ingestion.source"] == "conf/base/parameters_ingestion.yml"
    assert _loader("jquants").parameter_sources()["ingestion.source"] == "conf/jquants/parameters_ingestion.yml"


# ------------------------------------------------------------------------------ slow tests (kedro run)

PROBE_HOOK = '''"""Test-only hook: record the params: inputs every node receives; stop before the listed nodes."""

import json
from pathlib import Path

from kedro.framework.hooks import hook_impl

from atft_kedro.tracking import plain

RECORD = Path("param_probe.jsonl")
STOP_AT = Path("param_probe_stop.txt")


class ProbeStop(Exception):
    """The run was stopped on purpose before a node ran."""


class ParamProbeHook:
    @hook_impl(trylast=True)
    def before_node_run(self, node, inputs):
        params = {name: plain(value) for name, value in inputs.items() if name.startswith("params:")}
        with RECORD.open("a") as out:
            out.write(json.dumps({"node": node.name, "params": params}, default=str) + "\\n")
        if STOP_AT.exists() and node.name in STOP_AT.read_text().split():
            raise ProbeStop(f"stopped before {node.name}")
'''


class ProbeProject:
    """A copy of the project with the data of ``test_env_run`` and the probe hook."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def kedro_run(self, *args: str, stop_at: tuple[str, ...] = ()) -> tuple[int, str, list[dict[str, Any]]]:
        """``kedro run --env test <args>``: exit code, output, and the records of the probe."""
        (self.root / "param_probe.jsonl").unlink(missing_ok=True)
        (self.root / "param_probe_stop.txt").write_text("\n".join(stop_at))
        kedro = str(Path(sys.executable).with_name("kedro"))
        env = {**os.environ, "PYTHONPATH": str(self.root / "src"), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        result = subprocess.run([kedro, "run", "--env", "test", *args], cwd=self.root, env=env,
                                capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
        records_path = self.root / "param_probe.jsonl"
        records = [json.loads(line) for line in records_path.read_text().splitlines()] if records_path.exists() else []
        return result.returncode, result.stdout + result.stderr, records

    def mlflow_params(self) -> dict[str, str]:
        """Parameters of the newest MLflow run of the copy."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{self.root}/mlruns/mlflow.db")
        experiment = client.get_experiment_by_name("atft-kedro")
        runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0].data.params


@pytest.fixture(scope="module")
def probe(test_env_run, tmp_path_factory: pytest.TempPathFactory) -> ProbeProject:
    root = copy_project(tmp_path_factory.mktemp("params_project"))
    shutil.copytree(test_env_run.data, root / "data" / "test")
    (root / "src" / "atft_kedro" / "param_probe.py").write_text(PROBE_HOOK)
    with (root / "src" / "atft_kedro" / "settings.py").open("a") as settings:
        settings.write("\nfrom atft_kedro.param_probe import ParamProbeHook\n\nHOOKS = (*HOOKS, ParamProbeHook())\n")
    return ProbeProject(root)


def _received(records: list[dict[str, Any]], node: str, name: str) -> dict[str, Any]:
    found = [r["params"][name] for r in records if r["node"] == node]
    assert found, f"node {node} never ran; records: {[r['node'] for r in records]}"
    return found[0]


def _typed_test_params(block: str, model: type) -> dict[str, Any]:
    raw = ProjectConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local",
                              env="test")["parameters"][block]
    from atft_kedro.tracking import plain

    return plain(model.model_validate(raw))


@pytest.mark.slow
def test_training_max_epochs_reaches_the_node_the_log_and_mlflow(probe: ProbeProject) -> None:
    from atft_kedro.model.params import TrainingParams

    code, output, records = probe.kedro_run("--pipelines", "training", "--nodes", "train_atft_gat_fan",
                                            "--params", "training.max_epochs=3", stop_at=("train_atft_gat_fan",))
    assert code != 0 and "stopped before train_atft_gat_fan" in output, output[-4000:]
    received = _received(records, "train_atft_gat_fan", "params:training")
    expected = _typed_test_params("training", TrainingParams)
    assert expected["max_epochs"] != 3
    assert received == {**expected, "max_epochs": 3}
    logged = output.split("Resolved parameters used by this run (env=test): ", 1)[1].splitlines()[0]
    assert json.loads(logged)["training"]["max_epochs"] == 3
    assert "Overrides from --params: {\"training\": {\"max_epochs\": 3}}" in output
    params = probe.mlflow_params()
    assert params["training.max_epochs"] == "3"
    assert float(params["training.lr"]) == expected["lr"]


@pytest.mark.slow
def test_normalization_purge_days_reaches_make_splits(probe: ProbeProject) -> None:
    from atft_kedro.normalization.params import NormalizationParams

    code, output, records = probe.kedro_run("--pipelines", "normalization", "--nodes", "make_splits",
                                            "--params", "normalization.purge_days=24")
    assert code == 0, output[-4000:]
    received = _received(records, "make_splits", "params:normalization")
    expected = _typed_test_params("normalization", NormalizationParams)
    assert expected["purge_days"] != 24
    assert received == {**expected, "purge_days": 24}
    splits = json.loads((probe.root / "data" / "test" / "05_model_input" / "splits.json").read_text())
    assert splits["purge_days"] == 24


@pytest.mark.slow
def test_ingestion_files_directory_reads_that_folder(probe: ProbeProject, test_env_run, tmp_path: Path) -> None:
    import polars as pl

    bulk = tmp_path / "my bulk download"
    shutil.copytree(test_env_run.data / "01_raw", bulk)
    code, output, records = probe.kedro_run(
        "--pipelines", "ingestion", "--params", f"ingestion.source=files,ingestion.files.directory={bulk}")
    assert code == 0, output[-4000:]
    received = _received(records, "fetch_raw_tables", "params:ingestion")
    assert received["source"] == "files"
    assert received["files"] == {"directory": str(bulk), "format": "parquet"}
    assert received["jquants"]["base_url"] == "https://api.jquants.com/v2"  # sibling block intact
    for table in ("daily_quotes", "listed_info", "statements"):
        written = pl.read_parquet(probe.root / "data" / "test" / "02_intermediate" / f"{table}.parquet")
        original = pl.read_parquet(test_env_run.data / "02_intermediate" / f"{table}.parquet")
        assert written.equals(original), table


@pytest.mark.slow
@pytest.mark.parametrize(("override", "expected"), [
    ("trainng.max_epochs=3", "'trainng' (from --params \"trainng.max_epochs=3\"): unknown parameter block"),
    ("training.max_epochs=abc", "'training.max_epochs' (from --params \"training.max_epochs=abc\"): Input should "
                                "be a valid integer"),
])
def test_kedro_run_stops_on_a_bad_override(probe: ProbeProject, override: str, expected: str) -> None:
    code, output, records = probe.kedro_run("--pipelines", "training", "--params", override)
    assert code != 0
    assert expected in output, output[-4000:]
    assert records == []  # no node ran
