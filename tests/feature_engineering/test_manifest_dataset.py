"""``feature_manifest`` is a typed dataset: nodes get a ``FeatureManifest``; the JSON file keeps its format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro_project import load_conf

from atft_kedro.datasets import FeatureManifestDataset
from atft_kedro.datasets.atomic import AtomicJSONDataset
from atft_kedro.features.manifest import build_feature_manifest
from atft_kedro.features.params import FeatureParams
from atft_kedro.schemas.manifest import FeatureManifest


@pytest.fixture(scope="module")
def manifest(feature_params: FeatureParams) -> FeatureManifest:
    return build_feature_manifest(feature_params)


def test_round_trip_gives_the_same_manifest(manifest: FeatureManifest, tmp_path: Path) -> None:
    dataset = FeatureManifestDataset(filepath=str(tmp_path / "feature_manifest.json"))
    dataset.save(manifest)
    loaded = dataset.load()
    assert isinstance(loaded, FeatureManifest)
    assert loaded == manifest and loaded.hash == manifest.hash and len(loaded) > 250
    assert dataset.exists()


def test_the_file_is_byte_for_byte_the_json_written_before(manifest: FeatureManifest, tmp_path: Path) -> None:
    """The format is the one the untyped AtomicJSONDataset wrote from ``to_json_dict()``."""
    typed, untyped = tmp_path / "typed.json", tmp_path / "untyped.json"
    FeatureManifestDataset(filepath=str(typed)).save(manifest)
    AtomicJSONDataset(filepath=str(untyped)).save(manifest.to_json_dict())
    assert typed.read_bytes() == untyped.read_bytes()
    assert json.loads(typed.read_text())["hash"] == manifest.hash
    # and a file written before reads as a manifest
    assert FeatureManifestDataset(filepath=str(untyped)).load() == manifest


def test_saving_a_dict_is_refused(manifest: FeatureManifest, tmp_path: Path) -> None:
    path = tmp_path / "feature_manifest.json"
    with pytest.raises(DatasetError, match="expected a FeatureManifest to save, got dict"):
        FeatureManifestDataset(filepath=str(path)).save(manifest.to_json_dict())
    assert not path.exists()


def test_an_edited_or_truncated_file_is_refused_naming_it(manifest: FeatureManifest, tmp_path: Path) -> None:
    path = tmp_path / "feature_manifest.json"
    dataset = FeatureManifestDataset(filepath=str(path))
    dataset.save(manifest)
    edited = json.loads(path.read_text())
    edited["features"][0]["lag_days"] += 1  # the hash no longer matches the content
    path.write_text(json.dumps(edited))
    with pytest.raises(DatasetError, match=r"feature_manifest.json is not a valid feature manifest .*does not "
                                           r"match its content"):
        dataset.load()
    path.write_text(json.dumps(manifest.to_json_dict())[:500])
    with pytest.raises(DatasetError, match=r"feature_manifest.json is not JSON"):
        dataset.load()


def test_the_catalog_entry_is_the_typed_dataset(manifest: FeatureManifest, tmp_path: Path) -> None:
    entry = dict(load_conf("base")["catalog"]["feature_manifest"])
    assert entry["type"] == "atft_kedro.datasets.FeatureManifestDataset"
    entry["filepath"] = str(tmp_path / "04_feature" / "feature_manifest.json")
    catalog = DataCatalog.from_config({"feature_manifest": entry})
    catalog.save("feature_manifest", manifest)
    assert catalog.load("feature_manifest") == manifest
