"""Project datasets; ``ModelInputDataset`` is importable as ``atft_kedro.datasets.ModelInputDataset``.

Other dataset modules (``atomic``, ``torch_checkpoint``) are addressed by their module path.
"""

from atft_kedro.datasets.model_input_dataset import ModelInputDataset

__all__ = ["ModelInputDataset"]
