"""docs/architecture.md names what the code has: every package and module, every node, every catalog dataset."""

from __future__ import annotations

import re

import pytest
from kedro_project import PROJECT_ROOT, load_conf

from atft_kedro.pipeline_registry import register_pipelines

DOC = PROJECT_ROOT / "docs" / "architecture.md"
PACKAGE = PROJECT_ROOT / "src" / "atft_kedro"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _quoted(doc: str) -> set[str]:
    """Every `inline code` span of the text (fenced blocks left out)."""
    return set(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", doc, flags=re.S)))


def test_every_package_and_module_is_in_the_packages_picture(doc: str) -> None:
    picture = doc[doc.index("## Packages"):doc.index("## Pipelines")]
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(packages) >= 10 and len(modules) >= 10
    missing = [f"{p}/" for p in packages if f"  {p}/" not in picture] + [m for m in modules if m not in picture]
    assert missing == [], f"docs/architecture.md's package picture lacks {missing}"


def test_every_node_of_every_pipeline_is_named(doc: str) -> None:
    from kedro.framework.project import configure_project

    configure_project("atft_kedro")
    quoted = _quoted(doc)
    missing = sorted({
        f"{name}: {node.name.rsplit('.', 1)[-1]}"
        for name, pipeline in register_pipelines().items() if name != "__default__"
        for node in pipeline.nodes
        if node.name.rsplit(".", 1)[-1] not in quoted and not node.name.startswith("compute_")
    })
    # the feature groups' nodes are named by their pattern: compute_<group>_features
    assert "compute_<group>_features" in quoted
    assert missing == [], f"docs/architecture.md does not name these nodes: {missing}"


def test_every_catalog_dataset_is_named(doc: str) -> None:
    catalog = load_conf("local")["catalog"]
    names = [name for name in catalog if not name.startswith("_")]
    assert len(names) > 40
    quoted = _quoted(doc)
    # the walk-forward's per-fold datasets are named together: `fold_{k}.*`
    missing = [name for name in names if name not in quoted and not name.startswith("fold_{k}.")]
    assert "fold_{k}.*" in quoted
    assert missing == [], f"docs/architecture.md does not name these catalog datasets: {missing}"
