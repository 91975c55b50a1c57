"""QoS profiles by name, as Isaac ROS spells them (SENSOR_DATA, DEFAULT, SYSTEM_DEFAULT)."""

from __future__ import annotations

from typing import Any


def image_qos_profile(name: str, depth: int) -> Any:
    """The subscription profile ``name`` with history depth ``depth``.

    SENSOR_DATA (REP-2003) is best effort: it receives from both best-effort camera drivers and
    reliable publishers. DEFAULT is reliable: it receives nothing from a best-effort driver.
    """
    from rclpy.qos import (
        HistoryPolicy,
        QoSProfile,
        qos_profile_sensor_data,
        qos_profile_system_default,
    )

    if name == "SENSOR_DATA":
        base = qos_profile_sensor_data
    elif name == "DEFAULT":
        base = QoSProfile(depth=depth)
    elif name == "SYSTEM_DEFAULT":
        # Whatever the RMW's defaults are; the depth parameter does not apply.
        return qos_profile_system_default
    else:
        raise ValueError(f"image_qos must be SENSOR_DATA, DEFAULT or SYSTEM_DEFAULT, got {name!r}")
    return QoSProfile(reliability=base.reliability, durability=base.durability,
                      history=HistoryPolicy.KEEP_LAST, depth=depth)
