"""launch_testing: start siftrain_node from launch/derain_sift.launch.py, feed images, check the
feature clouds and /diagnostics, then (post-shutdown) the exit codes.

Needs ``launch``, ``launch_ros`` and ``launch_testing`` (a ROS 2 installation; not on PyPI) and
siftrain_ros installed where launch_ros finds it (AMENT_PREFIX_PATH: colcon build). Elsewhere
the module is skipped with the reason. Run with ``launch_test test/test_launch.py`` or pytest
(launch_testing's plugin, pytest < 9).
"""

from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip(
    "launch_testing", reason="launch_testing not installed (needs a ROS 2 installation)")
pytest.importorskip("launch_ros", reason="launch_ros not installed (needs a ROS 2 installation)")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import launch_testing.markers  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import (  # noqa: E402
    PackageNotFoundError,
    get_package_share_directory,
)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

try:
    SHARE = Path(get_package_share_directory("siftrain_ros"))
except PackageNotFoundError:
    pytest.skip("siftrain_ros is not installed in AMENT_PREFIX_PATH (colcon build first)",
                allow_module_level=True)

NAMESPACE = "launch_test"


def _params_file() -> str:
    # Plain SIFT: the test must not depend on trained weights.
    path = Path(tempfile.mkdtemp()) / "params.yaml"
    path.write_text("/**:\n  ros__parameters:\n    derain: false\n    image_qos: DEFAULT\n")
    return str(path)


@pytest.mark.launch_test
@launch_testing.markers.keep_alive
def generate_test_description() -> tuple[LaunchDescription, dict]:
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(SHARE / "launch" / "derain_sift.launch.py")),
        launch_arguments={"namespace": NAMESPACE, "image": f"/{NAMESPACE}/camera/image",
                          "params_file": _params_file(), "image_scale": "0.5",
                          "max_keypoints": "300", "large_data": "false"}.items())
    return LaunchDescription([include, launch_testing.actions.ReadyToTest()]), {}


class TestFeatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.node = rclpy.create_node("siftrain_launch_test")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_features_and_diagnostics(self, proc_output: object) -> None:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from ros_harness import image_msg, sample_gray

        from siftrain_ros.ros.feature_cloud import cloud_to_features

        clouds: list = []
        diagnostics: list = []
        self.node.create_subscription(PointCloud2, f"/{NAMESPACE}/features", clouds.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        pub = self.node.create_publisher(Image, f"/{NAMESPACE}/camera/image", 10)
        gray = sample_gray(0, (640, 480))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not clouds:
            pub.publish(image_msg(gray, sec=42, frame_id="cam"))
            end = time.monotonic() + 1.0
            while time.monotonic() < end and not clouds:
                rclpy.spin_once(self.node, timeout_sec=0.1)
        self.assertTrue(clouds, "no feature cloud from the launched node")
        cloud = clouds[0]
        self.assertEqual((cloud.header.stamp.sec, cloud.header.frame_id), (42, "cam"))
        features = cloud_to_features(cloud)
        self.assertGreater(len(features), 50)
        self.assertLessEqual(len(features), 300)
        self.assertGreater(features.xy[:, 0].max(), 400)  # input pixels at image_scale 0.5
        end = time.monotonic() + 5
        while time.monotonic() < end and not diagnostics:
            rclpy.spin_once(self.node, timeout_sec=0.1)
        self.assertTrue(any(s.name.endswith("feature front end")
                            for d in diagnostics for s in d.status))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_codes(self, proc_info: object) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
