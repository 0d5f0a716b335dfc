"""docs/data_contracts.md is generated from the pandera schemas and kept current.

(docs/features.md has its own test in tests/feature_engineering/test_docs.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from kedro_project import load_conf

from atft_kedro.schemas import feature, intermediate, model_output, raw
from atft_kedro.schemas.docs import describe_checks, main, render_data_contracts, schema_path
from atft_kedro.schemas.tables import TABLES, Column


def _sections(text: str) -> dict[str, str]:
    """``## `name` ...`` heading -> the section's text, heading line included."""
    parts = re.split(r"^(## `[^`]+`.*)$", text, flags=re.MULTILINE)
    return {heading.split("`")[1]: heading + body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_data_contracts_doc_is_current(project_root: Path) -> None:
    committed = (project_root / "docs" / "data_contracts.md").read_text(encoding="utf-8")
    assert committed == render_data_contracts(), (
        "docs/data_contracts.md is stale: run `python -m atft_kedro.schemas.docs` from the project root")


def test_each_table_section_lists_every_column_raw_to_canonical_once(tmp_path: Path) -> None:
    sections = _sections(main(["--out", str(tmp_path / "contracts.md")]).read_text(encoding="utf-8"))
    assert list(sections) == [t.canonical_name for t in TABLES] + [
        "oracle_expected_returns", "features", "targets", "stock_graph", "predictions", "daily_ranking"
    ]
    for spec in TABLES:
        section = sections[spec.canonical_name]
        assert f"`{spec.endpoint}`" in section and f"`{spec.raw_name}`" in section
        for column in spec.columns:
            rows = [line for line in section.splitlines() if f"| `{column.raw}` | `{column.canonical}` |" in line]
            assert len(rows) == 1, (spec.canonical_name, column.raw)
            nullable = "yes" if column.nullable else "no"
            assert f"| {nullable} |" in rows[0], (spec.canonical_name, column.canonical, rows[0])
        assert section.count("| yes | ") >= 1  # at least the key columns are marked


def test_documented_validators_are_the_ones_the_catalog_uses() -> None:
    from kedro.io import DataCatalog
    from kedro.utils import load_obj

    # resolved as Kedro resolves them: the raw tables come from the raw_{table} dataset factory
    conf = {k: v for k, v in load_conf("base")["catalog"].items() if not k.startswith("_")}
    resolver = DataCatalog.from_config(conf, credentials={"jquants": {"api_key": "unused"}}).config_resolver

    def validator(name: str) -> object:
        """The pandera schema a dataset is checked by (also through a wrapper naming it in ``options.schema``)."""
        declared = resolver.resolve_pattern(name)["validator"]
        if isinstance(declared, dict) and "schema" in declared.get("options", {}):
            return load_obj(declared["options"]["schema"])  # LazySchemaValidator: features, checked lazily
        return load_obj(declared["class"] if isinstance(declared, dict) else declared)

    for spec in TABLES:
        assert validator(spec.raw_name) is load_obj(schema_path(raw, spec.raw_name))
        assert validator(spec.canonical_name) is load_obj(schema_path(intermediate, spec.canonical_name))
    for name, module in (("features", feature), ("targets", feature), ("stock_graph", feature),
                         ("predictions", model_output), ("daily_ranking", model_output)):
        assert validator(name) is load_obj(schema_path(module, name)), name


def test_checks_are_described_in_words() -> None:
    finite = "finite (no NaN, no inf)"
    assert describe_checks(Column("P", "Price", pl.Float64, positive=True).pandera_column()) == f"{finite}, > 0"
    assert describe_checks(Column("V", "Volume", pl.Float64, non_negative=True).pandera_column()) == f"{finite}, >= 0"
    assert describe_checks(Column("X", "Ratio", pl.Float64).pandera_column()) == finite
    assert describe_checks(Column("N", "Name", pl.String).pandera_column()) == ""
    assert describe_checks(Column("D", "Division", pl.String, allowed=("0", "1")).pandera_column()) == "in '0', '1'"
