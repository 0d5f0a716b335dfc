"""Project settings: configuration environments and hooks."""

from atft_kedro.hooks import ParameterLoggingHook

HOOKS = (ParameterLoggingHook(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
