"""The message type store and writer settings shared by the bag tools."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
BAG_VERSION = 9  # rosbag2 metadata version written by Jazzy/Kilted


@cache
def typestore() -> Any:
    """ROS 2 Kilted message definitions (sensor_msgs, std_msgs, ...), as the wheels use."""
    return get_typestore(Stores.ROS2_KILTED)


def open_writer(path: Path, storage: str = "sqlite3") -> Writer:
    """A rosbag2 writer for a new bag directory ``path``.

    Raises:
        ValueError: unknown storage, or ``path`` exists (rosbag2 never overwrites).
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if path.exists():
        raise ValueError(f"{path} exists; rosbag2 writes a new directory")
    return Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
