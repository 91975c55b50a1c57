"""Start ``siftrain_node``: rain-robust SIFT features from a camera image topic.

    ros2 launch siftrain_ros derain_sift.launch.py image:=/camera/image_raw
    ros2 launch siftrain_ros derain_sift.launch.py --show-args

Parameters come from ``params_file`` (default: the package's config/derain_sift.yaml); the
launch arguments precision, image_scale, backend, engine_dir and max_keypoints override it only
when given (their empty default means "as in params_file"), so config/jetson.yaml keeps its
fp16 and 0.5 scale unless you say otherwise.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "siftrain_ros"
# Launch arguments that override a node parameter when non-empty: (name, type).
OVERRIDES = (("precision", str), ("image_scale", float), ("backend", str),
             ("engine_dir", str), ("max_keypoints", int))


def _node(context: LaunchContext) -> list[Node]:
    params: dict[str, ParameterValue] = {
        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}
    for name, value_type in OVERRIDES:
        if LaunchConfiguration(name).perform(context) != "":
            params[name] = ParameterValue(LaunchConfiguration(name), value_type=value_type)
    return [Node(
        package=PACKAGE,
        executable="siftrain_node",
        name="siftrain_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), params],
        remappings=[("image", LaunchConfiguration("image")),
                    ("camera_info", LaunchConfiguration("camera_info"))],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
    )]


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory(PACKAGE), "config",
                                  "derain_sift.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="input sensor_msgs/Image topic (remaps 'image'; "
                                          "<image>/compressed with subscribe_compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="input sensor_msgs/CameraInfo topic, passed through "
                                          "to features/camera_info"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="node parameters YAML (also: config/jetson.yaml, "
                                          "config/desktop_gpu.yaml)"),
        DeclareLaunchArgument("precision", default_value="",
                              choices=["", "fp32", "fp16", "int8"],
                              description="network precision; empty: as in params_file"),
        DeclareLaunchArgument("image_scale", default_value="",
                              description="processing scale in [0.05, 4] (keypoints stay in "
                                          "input pixels); empty: as in params_file"),
        DeclareLaunchArgument("backend", default_value="",
                              choices=["", "auto", "tensorrt", "tensorrt_rtx", "onnxruntime",
                                       "torch"],
                              description="network backend; empty: as in params_file"),
        DeclareLaunchArgument("engine_dir", default_value="",
                              description="TensorRT engine / ONNX cache directory; empty: as "
                                          "in params_file (there empty = package default)"),
        DeclareLaunchArgument("max_keypoints", default_value="",
                              description="keep the N strongest keypoints (0 = all); empty: "
                                          "as in params_file"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its relative topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              choices=["true", "false"],
                              description="use /clock (bag replay with --clock)"),
        DeclareLaunchArgument("log_level", default_value="info",
                              choices=["debug", "info", "warn", "error", "fatal"],
                              description="node log level"),
        DeclareLaunchArgument("large_data", default_value="true", choices=["true", "false"],
                              description="FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the node "
                                          "(TCP/SHM for big images; peers on other hosts need "
                                          "it too). Ignored by other RMWs"),
        # Set before the node starts: Fast DDS reads it when the participant is created.
        SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA",
                               condition=IfCondition(LaunchConfiguration("large_data"))),
        OpaqueFunction(function=_node),
    ])
