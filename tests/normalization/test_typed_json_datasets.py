"""``splits`` and ``normalizer`` are typed datasets: nodes get ``Splits`` / ``NormalizerState``, the files keep their format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

import normalization_fakes as fakes
from kedro_project import load_conf
from atft_kedro.datasets import NormalizerDataset, SplitsDataset
from atft_kedro.datasets.atomic import AtomicJSONDataset
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.pipelines.normalization.nodes import fit_normalizer, make_splits
from atft_kedro.schemas.model_input import Splits

N_STOCKS = 6


@pytest.fixture(scope="module")
def fitted() -> tuple[Splits, NormalizerState]:
    cal = fakes.calendar()
    feats = fakes.features(fakes.trading_days(cal), N_STOCKS)
    splits = make_splits(cal, feats, fakes.params(), fakes.HORIZONS)
    return splits, fit_normalizer(feats, fakes.manifest(), splits, fakes.params())


@pytest.mark.parametrize(("dataset_type", "index"), [(SplitsDataset, 0), (NormalizerDataset, 1)])
def test_round_trip_and_the_file_format_of_before(dataset_type, index: int, fitted, tmp_path: Path) -> None:
    value = fitted[index]
    assert isinstance(value, dataset_type.model)  # the nodes return the typed object
    typed, untyped = tmp_path / "typed.json", tmp_path / "untyped.json"
    dataset_type(filepath=str(typed)).save(value)
    AtomicJSONDataset(filepath=str(untyped)).save(value.model_dump(mode="json"))  # what was written before
    assert typed.read_bytes() == untyped.read_bytes()
    loaded = dataset_type(filepath=str(untyped)).load()
    assert isinstance(loaded, dataset_type.model) and loaded == value


@pytest.mark.parametrize(("dataset_type", "index"), [(SplitsDataset, 0), (NormalizerDataset, 1)])
def test_saving_a_dict_is_refused(dataset_type, index: int, fitted, tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    with pytest.raises(DatasetError, match=f"expected a {dataset_type.model.__name__} to save, got dict"):
        dataset_type(filepath=str(path)).save(fitted[index].model_dump(mode="json"))
    assert not path.exists()


def test_an_edited_normalizer_is_refused_naming_the_file_and_the_fix(fitted, tmp_path: Path) -> None:
    path = tmp_path / "normalizer.json"
    dataset = NormalizerDataset(filepath=str(path))
    dataset.save(fitted[1])
    edited = json.loads(path.read_text())
    edited["center"][0] += 1.0  # the identity no longer matches the content
    path.write_text(json.dumps(edited))
    with pytest.raises(DatasetError, match=r"normalizer.json is not a valid normalizer .*edited after fitting.*"
                                           r"kedro run --pipelines normalization"):
        dataset.load()


def test_splits_that_overlap_are_refused_on_load(fitted, tmp_path: Path) -> None:
    path = tmp_path / "splits.json"
    dataset = SplitsDataset(filepath=str(path))
    dataset.save(fitted[0])
    edited = json.loads(path.read_text())
    edited["validation"]["start"] = edited["train"]["start"]  # validation now starts inside train
    path.write_text(json.dumps(edited))
    with pytest.raises(DatasetError, match=r"splits.json is not a valid splits document"):
        dataset.load()
    path.unlink()
    with pytest.raises(DatasetError, match=r"does not exist: run kedro run --pipelines normalization first"):
        dataset.load()


def test_the_catalog_entries_are_the_typed_datasets(fitted, tmp_path: Path) -> None:
    catalog_conf = load_conf("base")["catalog"]
    for name, fold_name, dataset_type in (("splits", "fold_{k}.splits", SplitsDataset),
                                          ("normalizer", "fold_{k}.normalizer", NormalizerDataset)):
        expected = f"atft_kedro.datasets.{dataset_type.__name__}"
        assert catalog_conf[name]["type"] == expected and catalog_conf[fold_name]["type"] == expected
    entry = dict(catalog_conf["splits"], filepath=str(tmp_path / "splits.json"))
    catalog = DataCatalog.from_config({"splits": entry})
    catalog.save("splits", fitted[0])
    assert catalog.load("splits") == fitted[0]
