"""Offline processing: a rosbag2 in, the same bag plus feature clouds out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rosbags.rosbag2 import Reader
from tqdm import tqdm

from ..frontend import FeatureFrontEnd
from ..node.decode import decode_image
from ..ros.image_conversion import ImageConversionError
from ..sift.image import InvalidImageError
from .cloud import features_to_bag_cloud
from .store import open_writer, typestore

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def pick_image_topic(reader: Reader, topic: str | None) -> str:
    """``topic``, or the only image topic in the bag.

    Raises:
        ValueError: no such image topic, or several and none chosen.
    """
    images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
    if topic is not None:
        if topic not in images:
            raise ValueError(f"no image topic {topic!r} in the bag; image topics: "
                             f"{', '.join(images) or 'none'}")
        return topic
    if len(images) != 1:
        raise ValueError(f"the bag has {len(images)} image topics ({', '.join(images)}): "
                         f"choose one with --image-topic")
    return images[0]


def process_bag(src: Path, out: Path, frontend: FeatureFrontEnd, *,
                image_topic: str | None = None, features_topic: str | None = None,
                storage: str = "sqlite3", progress: bool = True,
                warn: Callable[[str], None] = print) -> tuple[int, int]:
    """Copy every message of ``src`` to ``out`` and add one feature cloud per image of
    ``image_topic``, stamped with the image's header and written at the image's bag time.

    ``features_topic`` defaults to ``<image namespace>/features`` (``/camera/rgb/features``
    for ``/camera/rgb/image_color``), as the node would publish it in that namespace.

    Returns:
        (clouds written, frames rejected).
    """
    store = typestore()
    with Reader(src) as reader:
        topic = pick_image_topic(reader, image_topic)
        if features_topic is None:
            features_topic = f"{topic.rsplit('/', 1)[0]}/features"
        written = rejected = 0
        with open_writer(out, storage) as writer:
            conns = {}
            for conn in reader.connections:
                conns[conn.id] = writer.add_connection(
                    conn.topic, conn.msgtype, typestore=store, serialization_format="cdr",
                    offered_qos_profiles=conn.ext.offered_qos_profiles)
            cloud_type = "sensor_msgs/msg/PointCloud2"
            cloud_conn = writer.add_connection(features_topic, cloud_type, typestore=store)
            total = sum(c.msgcount for c in reader.connections if c.topic == topic)
            bar = tqdm(total=total, unit="frame", disable=not progress, desc="features")
            for conn, timestamp, raw in reader.messages():
                writer.write(conns[conn.id], timestamp, raw)
                if conn.topic != topic:
                    continue
                msg = store.deserialize_cdr(raw, conn.msgtype)
                bar.update()
                try:
                    result = frontend(decode_image(msg))
                except (ImageConversionError, InvalidImageError) as error:
                    rejected += 1
                    warn(f"frame at {timestamp} rejected: {error}")
                    continue
                cloud = features_to_bag_cloud(result.features, msg.header)
                writer.write(cloud_conn, timestamp, store.serialize_cdr(cloud, cloud_type))
                written += 1
                bar.set_postfix(keypoints=len(result.features))
            bar.close()
    return written, rejected
