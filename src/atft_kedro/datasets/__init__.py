"""Project datasets; ``ModelInputDataset`` and the typed JSON datasets (``FeatureManifestDataset``,
``SplitsDataset``, ``NormalizerDataset``) are importable from ``atft_kedro.datasets``.

Other dataset modules (``atomic``, ``torch_checkpoint``, ``lazy_parquet``) are addressed by their module path.
"""

from atft_kedro.datasets.model_input_dataset import ModelInputDataset
from atft_kedro.datasets.typed_json import FeatureManifestDataset, NormalizerDataset, SplitsDataset

__all__ = ["FeatureManifestDataset", "ModelInputDataset", "NormalizerDataset", "SplitsDataset"]
