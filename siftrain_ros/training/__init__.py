"""Training DPRNet, GGIRNet and the pixel-L1 ablation on (rainy, clean) gray patches."""

from .augment import Augmentation
from .data import (
    PatchSampler,
    TrainingImages,
    default_data_root,
    load_training_images,
    validation_pairs,
)
from .trainer import TrainConfig, Trainer, validation_score

__all__ = ["Augmentation", "PatchSampler", "TrainConfig", "Trainer", "TrainingImages",
           "default_data_root", "load_training_images", "validation_pairs", "validation_score"]
