"""docs/features.md is generated from the manifest and kept current."""

from __future__ import annotations

from pathlib import Path

from atft_kedro.features.docs import load_params, main, write_features_doc
from atft_kedro.features.manifest import build_feature_manifest


def test_features_doc_is_current_for_the_base_conf(project_root: Path) -> None:
    manifest = build_feature_manifest(load_params(project_root / "conf", "base"))
    current = (project_root / "docs" / "features.md").read_text(encoding="utf-8")
    assert current == write_features_doc(manifest), (
        "docs/features.md is stale: run `python -m atft_kedro.features.docs` from the project root")


def test_features_doc_lists_every_feature_once(project_root: Path, tmp_path: Path) -> None:
    out = main(["--conf-source", str(project_root / "conf"), "--out", str(tmp_path / "features.md")])
    text = out.read_text(encoding="utf-8")
    manifest = build_feature_manifest(load_params(project_root / "conf", "base"))
    for name in manifest.names:
        assert text.count(f"| `{name}` |") == 1, name
    assert manifest.hash in text
