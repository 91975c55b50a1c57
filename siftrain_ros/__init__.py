"""siftrain_ros: rain-robust SIFT for ROS 2 visual-odometry front ends."""

import os

# PyTorch's OpenMP threads spin-wait between parallel regions by default. The SIFT stages are
# many short tensor ops, and the node shares the cores with its executor, other nodes and the
# bag player: spinning then made description 10-80x slower under load. Passive waiting costs
# microseconds per op when the machine is idle. Must be set before torch is first imported;
# an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


# Feature-cloud helpers at package level (``siftrain_ros.features_from_cloud(msg)``), loaded on
# first use: ``import siftrain_ros`` stays light (no cv2/numpy/ROS import until needed).
_LAZY = {"features_from_cloud": "siftrain_ros.ros.feature_cloud",
         "features_to_cloud": "siftrain_ros.ros.feature_cloud"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'siftrain_ros' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
