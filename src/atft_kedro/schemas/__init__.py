"""Data contracts: every boundary dataset's pandera schema, one module per data layer."""
