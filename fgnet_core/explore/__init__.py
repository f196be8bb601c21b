"""Interactive explorers behind notebooks/explore_*.ipynb: the notebooks only set parameters and call these."""
from fgnet_core.explore.feature_explorer import FeatureExplorer, channel_stats, feature_pyramid, level_ablation, pca_rgb
from fgnet_core.explore.heatmap_explorer import HeatmapExplorer
from fgnet_core.explore.sources import (
    CorpusSource, PhotoSource, Sample, explore_model, explore_samples, model_outputs, resolve_root, setup,
)

__all__ = ["FeatureExplorer", "HeatmapExplorer", "CorpusSource", "PhotoSource", "Sample", "channel_stats",
           "explore_model", "explore_samples", "feature_pyramid", "level_ablation", "model_outputs", "pca_rgb",
           "resolve_root", "setup"]
