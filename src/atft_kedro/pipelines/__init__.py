"""One package per Kedro pipeline: ``nodes.py`` holds pure functions, ``pipeline.py`` wires them."""
