"""Replaying a rosbag2 through rclpy at its recorded timing (``ros2 bag play`` for machines
without the ``ros2`` CLI). Messages go out as the recorded CDR bytes: no deserialisation."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader


def message_class(msgtype: str) -> Any:
    """``sensor_msgs/msg/Image`` -> the rclpy class ``sensor_msgs.msg.Image``.

    Raises:
        ValueError: the message package is not installed for rclpy.
    """
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"message type {msgtype} is not available to rclpy: {error}") from None


def play_bag(node: Any, src: Path, *, rate: float = 1.0, loop: bool = False,
             topics: list[str] | None = None, wait_subscribers: float = 0.0,
             min_subscribers: int = 1, on_message: Callable[[str, int], None] | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> int:
    """Publish the bag's messages from ``node`` with their recorded spacing / ``rate``.

    Args:
        wait_subscribers: wait up to this many seconds for every publisher to be matched
            before starting (so the first messages are not lost to discovery).
        min_subscribers: subscriptions each publisher waits for: with several consumers, one
            matched early must not start the replay before the others.
        should_stop: polled between messages (e.g. ``lambda: not rclpy.ok()``).

    Returns:
        The number of messages published.
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if min_subscribers < 1:
        raise ValueError(f"min_subscribers must be >= 1, got {min_subscribers}")
    published = 0
    with Reader(src) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            raise ValueError(f"no topics to play in {src} (asked for {topics})")
        pubs = {}
        for conn in conns:
            if conn.topic not in pubs:
                pubs[conn.topic] = node.create_publisher(message_class(conn.msgtype),
                                                         conn.topic, 10)
        deadline = time.monotonic() + wait_subscribers
        while wait_subscribers > 0 and not should_stop():
            counts = {topic: p.get_subscription_count() for topic, p in pubs.items()}
            if min(counts.values()) >= min_subscribers:
                break
            if time.monotonic() >= deadline:
                node.get_logger().warning(
                    f"playing without all subscribers after {wait_subscribers:g} s: "
                    f"{counts} (wanted {min_subscribers} per topic)")
                break
            time.sleep(0.05)
        while True:
            start_wall, start_bag = time.monotonic(), None
            for conn, timestamp, raw in reader.messages(connections=conns):
                if should_stop():
                    return published
                if start_bag is None:
                    start_bag = timestamp
                delay = start_wall + (timestamp - start_bag) / 1e9 / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pubs[conn.topic].publish(bytes(raw))  # rclpy publishes serialized CDR as is
                published += 1
                if on_message is not None:
                    on_message(conn.topic, timestamp)
            if not loop:
                _wait_acked(pubs.values())
                return published


def _wait_acked(publishers: Any, timeout_s: float = 5.0) -> None:
    """Reliable messages still in flight die with the process: let subscribers ack them."""
    from rclpy.duration import Duration

    for publisher in publishers:
        publisher.wait_for_all_acked(Duration(nanoseconds=int(timeout_s * 1e9)))
