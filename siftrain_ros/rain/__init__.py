"""Synthetic rain for training pairs and demos: streak layers over depth, plus a haze veil.

Model (Li et al., CVPR 2019): ``observed = t * (background + streaks) + (1 - t) * airlight``,
with streaks rendered as random drops smeared by a motion-blur kernel over several depth layers.
Everything is drawn from a numpy Generator seeded by the caller, so renders are reproducible.
"""

from .haze import composite
from .params import INTENSITIES, RainParams
from .render import add_rain, rainy_pairs
from .streaks import rain_layer, streak_kernel

__all__ = ["INTENSITIES", "RainParams", "add_rain", "composite", "rain_layer", "rainy_pairs",
           "streak_kernel"]
