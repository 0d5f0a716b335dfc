"""Project datasets; ``ModelInputDataset`` and ``FeatureManifestDataset`` are importable from ``atft_kedro.datasets``.

Other dataset modules (``atomic``, ``torch_checkpoint``) are addressed by their module path.
"""

from atft_kedro.datasets.feature_manifest_dataset import FeatureManifestDataset
from atft_kedro.datasets.model_input_dataset import ModelInputDataset

__all__ = ["FeatureManifestDataset", "ModelInputDataset"]
