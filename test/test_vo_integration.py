"""``siftrain_vo`` as a separate process over real rclpy (ROS 2 wheels).

1. Bag -> ``siftrain_node`` (plain SIFT, image_scale 0.5) -> ``siftrain_vo``: odometry for every
   frame after the first, header stamps from the frames, nothing lost; exit 0 on SIGINT.
2. Bad input straight into ``siftrain_vo``: a single frame (no pose), frames before any
   camera_info (warned, no pose), a malformed feature cloud (warned, counted), then tracking
   once camera_info arrives; exit 0 on SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels or installation) not found")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from ros_harness import NodeProcess, RosHarness, ros_env, sample_gray  # noqa: E402
from sensor_msgs.msg import CameraInfo, PointCloud2  # noqa: E402

from siftrain_ros.frontend import FeatureFrontEnd, FrontEndConfig  # noqa: E402
from siftrain_ros.ros.feature_cloud import features_to_cloud  # noqa: E402

FRAMES = 12
TUM_K = (520.9, 521.0, 325.1, 249.7)


class VoProcess(NodeProcess):
    """``python -m siftrain_ros.vo`` (the ``siftrain_vo`` console script) as a child process;
    the rest (log file, ready, stop) is ros_harness.NodeProcess's."""

    module = "siftrain_ros.vo"
    default_name = "vo"


def _vo_values(msg: Any) -> dict[str, str]:
    for status in msg.status:
        if status.name.endswith("visual odometry"):
            return {kv.key: kv.value for kv in status.values}
    return {}


def _latest_vo(diagnostics: list) -> dict[str, str]:
    for msg in reversed(diagnostics):
        values = _vo_values(msg)
        if values:
            return values
    return {}


def _stop_all(*procs: NodeProcess) -> None:
    for proc in procs:
        if proc.proc.poll() is None:
            proc.stop(signal.SIGKILL)


def test_tracks_bag_through_feature_node(tmp_path: Path) -> None:
    bag = tmp_path / "rainy_bag"
    subprocess.run([sys.executable, "-m", "siftrain_ros.cli", "demo-bag", str(bag), "--frames",
                    str(FRAMES), "--no-clean", "--seed", "3"], check=True, capture_output=True)
    env = ros_env(tmp_path)
    features = NodeProcess(tmp_path, env, {"derain": False, "image_scale": 0.5,
                                           "image_qos": "DEFAULT", "qos_depth": 20},
                           remaps={"image": "/camera/rgb/image_color",
                                   "camera_info": "/camera/rgb/camera_info"}, name="features")
    vo = VoProcess(tmp_path, env, {}, remaps={"camera_info": "/features/camera_info"})
    ros = None
    try:
        ros = RosHarness(int(env["ROS_DOMAIN_ID"]))
        odometry = ros.collect(Odometry, "/odometry")
        clouds = ros.collect(PointCloud2, "/features")
        features.wait_ready()
        vo.wait_ready()
        ros.wait_for(lambda: ros.node.count_subscribers("/features") >= 2, 30,
                     "siftrain_vo's features subscription")
        # Our own subscription counts at once; the feature node's publisher must be discovered
        # too, or its first cloud can reach siftrain_vo but not us (seen once in CI).
        ros.wait_for(lambda: ros.node.count_publishers("/features") >= 1, 30,
                     "the feature node's features publisher")
        ros.wait_for(lambda: ros.node.count_publishers("/odometry") >= 1, 30,
                     "siftrain_vo's odometry publisher")
        # 10 Hz bag at rate 0.2: 2 frames/s, well within plain SIFT at half scale on 2 cores.
        # The reliable VO subscription loses nothing; the feature node may still drop one
        # frame while it warms up (newest-wins mailbox), so odometry is checked against the
        # clouds it actually published.
        play = subprocess.run([sys.executable, "-m", "siftrain_ros.cli", "bag", "play",
                               str(bag), "--rate", "0.2", "--wait-subscribers", "30"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert play.returncode == 0, play.stderr
        try:
            ros.wait_for(lambda: len(clouds) >= FRAMES - 1
                         and len(odometry) == len(clouds) - 1, 30, "odometry for every cloud")
        except AssertionError as error:
            raise AssertionError(f"{error}: {len(clouds)} clouds, {len(odometry)} odometry\n"
                                 f"{vo.output()}\n{features.output()}") from None
        time.sleep(1.0)  # a late cloud would show up as a mismatch below
        assert len(odometry) == len(clouds) - 1 >= FRAMES - 2
        cloud_stamps = [(c.header.stamp.sec, c.header.stamp.nanosec) for c in clouds]
        odom_stamps = [(o.header.stamp.sec, o.header.stamp.nanosec) for o in odometry]
        assert odom_stamps == cloud_stamps[1:]  # every frame after the first, never restamped
        last = odometry[-1]
        assert last.header.frame_id == "odom"
        assert last.child_frame_id == "openni_rgb_optical_frame"
        q = last.pose.pose.orientation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
        assert last.pose.covariance[0] >= 1e5  # position flagged as scale-free
        assert "tracking lost" not in vo.output()
        assert vo.stop(signal.SIGINT) == 0
        assert features.stop(signal.SIGINT) == 0
    finally:
        print(vo.output(), features.output())  # shown by pytest on failure
        _stop_all(features, vo)
        if ros is not None:
            ros.close()


def _cloud(index: int, sec: int) -> PointCloud2:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    frontend = FeatureFrontEnd(FrontEndConfig(derain=False))
    result = frontend(sample_gray(index))
    return features_to_cloud(result.features, Header(stamp=Time(sec=sec), frame_id="cam"))


def test_bad_input_warns_and_keeps_running(tmp_path: Path) -> None:
    env = ros_env(tmp_path)
    vo = VoProcess(tmp_path, env, {"odom_frame": "world"})
    ros = None
    try:
        ros = RosHarness(int(env["ROS_DOMAIN_ID"]))
        odometry = ros.collect(Odometry, "/odometry")
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        cloud_pub = ros.node.create_publisher(PointCloud2, "/features", 10)
        info_pub = ros.node.create_publisher(CameraInfo, "/camera_info", 10)
        vo.wait_ready()
        ros.wait_for(lambda: cloud_pub.get_subscription_count() > 0, 30, "features sub")
        ros.wait_for(lambda: info_pub.get_subscription_count() > 0, 30, "camera_info sub")
        # Three bundled frames: the fourth cloud goes back to frame 1 (a valid motion too).
        clouds = [_cloud(index, sec=10 + i) for i, index in enumerate((0, 1, 2, 1))]

        # A single frame: the reference, no pose, no crash.
        cloud_pub.publish(clouds[0])
        ros.wait_for(lambda: _latest_vo(diagnostics).get("frames_received") == "1", 20,
                     "first frame received")
        # No camera_info yet: warned, no pose.
        cloud_pub.publish(clouds[1])
        ros.wait_for(lambda: "no camera_info yet" in vo.output(), 20, "no-intrinsics warning")
        # Malformed: descriptor field missing; and a wrong point_step.
        bad = _cloud(2, sec=50)
        bad.fields = [f for f in bad.fields if f.name != "descriptor"]
        cloud_pub.publish(bad)
        short = _cloud(2, sec=51)
        short.point_step = 100
        cloud_pub.publish(short)
        ros.wait_for(lambda: _latest_vo(diagnostics).get("frames_rejected") == "2", 20,
                     "two rejected clouds in diagnostics")
        assert "feature cloud rejected" in vo.output()
        assert not odometry and vo.proc.poll() is None

        # Intrinsics arrive (sample frames are 320x240: half the TUM calibration).
        fx, fy, cx, cy = (v / 2 for v in TUM_K)
        info = CameraInfo(width=320, height=240, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
        info_pub.publish(info)
        ros.wait_for(lambda: "intrinsics from camera_info" in vo.output(), 20, "intrinsics")
        cloud_pub.publish(clouds[2])
        cloud_pub.publish(clouds[3])
        ros.wait_for(lambda: len(odometry) == 2, 20, f"two poses:\n{vo.output()}")
        assert [o.header.stamp.sec for o in odometry] == [12, 13]
        assert odometry[0].header.frame_id == "world" and odometry[0].child_frame_id == "cam"
        values = ros.wait_for(lambda: (v := _latest_vo(diagnostics)).get("frames_tracked") == "2"
                              and v, 20, "tracked count")
        assert values["frames_without_intrinsics"] == "1"
        assert vo.stop(signal.SIGTERM) == 0
    finally:
        print(vo.output())  # shown by pytest on failure
        _stop_all(vo)
        if ros is not None:
            ros.close()
