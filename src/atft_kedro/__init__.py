"""atft-kedro: ATFT-GAT-FAN return forecasts for the Tokyo Stock Exchange, as a Kedro project."""

__version__ = "0.1.0"
