"""``siftrain_node`` as a separate process, driven over real rclpy (ROS 2 Kilted wheels).

Checks: feature clouds with the image's header, the documented layout and the same keypoints
as the front end run in-process; camera_info pass-through; bad frames rejected while good ones
flow; /diagnostics counts; frames dropped under a burst (newest wins); parameter changes
refused with a reason; derain on (test weights) and off; image_scale 0.5 in original pixels;
clean exit code 0 on SIGINT and SIGTERM; a clear start-up error for missing weights.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels or installation) not found")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from ros_harness import (  # noqa: E402
    FRAME_SIZE,
    NodeProcess,
    RosHarness,
    diagnostics_values,
    image_msg,
    make_test_weights,
    ros_env,
    sample_gray,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from siftrain_ros.frontend import FeatureFrontEnd, FrontEndConfig, make_backend  # noqa: E402
from siftrain_ros.ros.feature_cloud import FIELD_LAYOUT, POINT_STEP, cloud_to_features  # noqa: E402

WIDTH, HEIGHT = FRAME_SIZE


def _stamp(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def _cloud_for(clouds: list, sec: int) -> Any:
    return next((c for c in clouds if c.header.stamp.sec == sec), None)


def _assert_same_keypoints(got: np.ndarray, want: np.ndarray) -> None:
    """The node's keypoints are the in-process front end's (same code and weights)."""
    assert abs(len(got) - len(want)) <= max(2, 0.02 * len(want)), (len(got), len(want))
    distance = np.linalg.norm(got[:, None, :] - want[None, :, :], axis=2).min(axis=1)
    assert (distance < 0.05).mean() > 0.95


class Session:
    """A running node plus the test's publishers and subscriptions."""

    def __init__(self, tmp_path: Path, params: dict[str, Any],
                 remaps: dict[str, str] | None = None, image_topic: str = "/image") -> None:
        self.env = ros_env(tmp_path)
        self.node = NodeProcess(tmp_path, self.env, params, remaps)
        try:
            self._connect(image_topic)
        except BaseException:
            self.node.stop(signal.SIGKILL)  # never leave a node behind a failed start
            raise

    def _connect(self, image_topic: str) -> None:
        self.ros = RosHarness(int(self.env["ROS_DOMAIN_ID"]))
        self.clouds = self.ros.collect(PointCloud2, "/features")
        self.infos = self.ros.collect(CameraInfo, "/features/camera_info")
        self.diagnostics = self.ros.collect(DiagnosticArray, "/diagnostics")
        self.image_pub = self.ros.node.create_publisher(Image, image_topic, 10)
        self.info_pub = self.ros.node.create_publisher(CameraInfo, "/camera_info", 10)
        self.node.wait_ready()
        self.ros.wait_for(lambda: self.image_pub.get_subscription_count() > 0, 30,
                          "the node's image subscription")
        self.ros.wait_for(lambda: self.ros.node.count_publishers("/features") > 0, 30,
                          "the node's features publisher")

    def send(self, msg: Any) -> None:
        self.image_pub.publish(msg)

    def send_and_wait(self, msg: Any, timeout: float = 30.0) -> Any:
        """Publish a frame and return its feature cloud (matched by stamp). Re-sends once a
        second: the first frames can race discovery of the best-effort subscription."""
        sec = msg.header.stamp.sec
        for _ in range(int(timeout)):
            self.send(msg)
            try:
                return self.ros.wait_for(lambda: _cloud_for(self.clouds, sec), 1.0)
            except AssertionError:
                continue
        raise AssertionError(f"no feature cloud for stamp {sec}:\n{self.node.output()}")

    def latest_diagnostics(self, predicate: Any, timeout: float = 10.0) -> dict[str, str]:
        def find() -> Any:
            for msg in reversed(self.diagnostics):
                values = diagnostics_values(msg)
                if values and predicate(values):
                    return values
            return None
        return self.ros.wait_for(find, timeout, "matching diagnostics")

    def close(self, sig: int = signal.SIGINT) -> int:
        code = self.node.stop(sig)
        self.ros.close()
        return code


@pytest.fixture(scope="module")
def derain_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    tmp_path = tmp_path_factory.mktemp("derain_node")
    weights = make_test_weights(tmp_path_factory.mktemp("weights"))
    # The untrained test nets barely change a frame: the default rain gates would call every
    # frame (and pixel) dry, so they are off here and test_rain_gate_live switches one on.
    session = Session(tmp_path, {"weights_dir": str(weights), "derain": True, "backend": "torch",
                                 "publish_derained": True, "rain_gate": 0.0,
                                 "local_rain_gate": 0.0, "keypoint_rain_gate": 0.0})
    session.weights = weights  # type: ignore[attr-defined]
    yield session
    if session.node.proc.poll() is None:
        session.close()


def test_derain_features_match_frontend(derain_session: Session) -> None:
    gray = sample_gray(0)
    cloud = derain_session.send_and_wait(image_msg(gray, sec=100, nanosec=123, frame_id="cam0"))
    assert _stamp(cloud) == (100, 123) and cloud.header.frame_id == "cam0"
    assert [(f.name, f.datatype, f.count) for f in cloud.fields] == list(FIELD_LAYOUT)
    assert cloud.point_step == POINT_STEP and cloud.height == 1 and not cloud.is_bigendian
    # The worker warms every stage up before it takes the first frame.
    assert "warmed up in" in derain_session.node.output()
    features = cloud_to_features(cloud)
    assert len(features) > 50
    assert (features.xy >= -0.5).all()
    assert (features.xy[:, 0] < WIDTH).all() and (features.xy[:, 1] < HEIGHT).all()
    backend = make_backend("torch", weights_dir=derain_session.weights, log=lambda _: None)
    want = FeatureFrontEnd(FrontEndConfig(derain=True), backend)(gray).features
    _assert_same_keypoints(features.xy, want.xy)


def test_camera_info_passed_through(derain_session: Session) -> None:
    info = CameraInfo(width=WIDTH, height=HEIGHT, k=[260.0, 0.0, 160.0, 0.0, 260.0, 120.0,
                                                     0.0, 0.0, 1.0])
    info.header.stamp.sec, info.header.frame_id = 101, "cam0"
    derain_session.ros.wait_for(lambda: derain_session.info_pub.get_subscription_count() > 0,
                                10, "camera_info subscription")
    derain_session.info_pub.publish(info)
    time.sleep(0.3)
    derain_session.send_and_wait(image_msg(sample_gray(1), sec=101, frame_id="cam0"))
    got = derain_session.ros.wait_for(
        lambda: next((m for m in derain_session.infos if m.header.stamp.sec == 101), None), 10,
        "features/camera_info")
    assert list(got.k) == list(info.k) and got.width == WIDTH


def test_bad_frames_rejected_good_frames_flow(derain_session: Session) -> None:
    gray = sample_gray(2)
    bad = []
    unsupported = image_msg(gray, sec=200)
    unsupported.encoding = "yuv422_yuy2"
    bad.append(unsupported)
    truncated = image_msg(gray, sec=201)
    truncated.data = bytes(truncated.data)[: len(truncated.data) // 2]
    bad.append(truncated)
    empty = image_msg(gray, sec=202)
    empty.width = empty.height = empty.step = 0
    empty.data = b""
    bad.append(empty)
    short_step = image_msg(gray, sec=203)
    short_step.step = WIDTH - 1
    bad.append(short_step)
    nan = image_msg(gray, sec=204)
    values = gray.astype(np.float32)
    values[5, 7] = np.nan
    nan.encoding, nan.step, nan.data = "32FC1", WIDTH * 4, values.tobytes()
    bad.append(nan)
    before = derain_session.latest_diagnostics(lambda v: True)
    rejected_before = int(before["frames_rejected"])
    for msg in bad:
        derain_session.send(msg)
        time.sleep(0.4)  # one at a time: newest-wins mailbox
    try:
        values_after = derain_session.latest_diagnostics(
            lambda v: int(v["frames_rejected"]) >= rejected_before + len(bad))
    except AssertionError:
        raise AssertionError(f"{diagnostics_values(derain_session.diagnostics[-1])}\n"
                             f"{derain_session.node.output()}") from None
    assert "last_rejection" in values_after
    assert not [c for c in derain_session.clouds if 200 <= c.header.stamp.sec <= 204]
    cloud = derain_session.send_and_wait(image_msg(gray, sec=205))
    assert cloud.width > 50
    # A finite 32FC1 frame is accepted (intensities 0..255).
    good_float = image_msg(gray, sec=206)
    good_float.encoding, good_float.step = "32FC1", WIDTH * 4
    good_float.data = gray.astype(np.float32).tobytes()
    assert derain_session.send_and_wait(good_float).width > 50
    assert derain_session.node.proc.poll() is None
    assert "frame rejected" in derain_session.node.output()


def test_diagnostics_and_dropped_frames(derain_session: Session) -> None:
    gray = sample_gray(0)
    for i in range(12):  # far faster than ~5 frames/s of the pipeline
        derain_session.send(image_msg(gray, sec=300 + i))
    derain_session.ros.wait_for(lambda: _cloud_for(derain_session.clouds, 311), 20,
                                "the newest frame of the burst")
    values = derain_session.latest_diagnostics(lambda v: int(v["frames_dropped"]) > 0)
    assert int(values["frames_received"]) >= 12
    assert int(values["frames_processed"]) < int(values["frames_received"])
    for key in ("networks_ms", "sift_ms", "total_ms", "latency_ms", "input_rate_hz",
                "output_rate_hz"):
        assert key in values and float(values[key]) >= 0
    assert float(values["networks_ms"]) > 0
    assert values["derain"] == "True" and values["backend"] == "torch"
    assert float(values["last_rain_level"]) > 0 and values["frames_gated_dry"] == "0"
    assert values["rain_gate"] == "0" and values["local_rain_gate"] == "0"
    assert values["keypoint_rain_gate"] == "0"
    assert values["correction_strength"] == "1" and values["flip_ensemble"] == "False"


def _set_parameter(session: Session, name: str, value: ParameterValue) -> Any:
    client = session.ros.node.create_client(SetParameters, "/siftrain_node/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name,
                                                                           value=value)]))
    session.ros.wait_for(future.done, 10, "set_parameters response")
    return future.result().results[0]


def test_parameter_changes(derain_session: Session) -> None:
    bad = _set_parameter(derain_session, "image_scale",
                         ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=9.0))
    assert not bad.successful and "image_scale" in bad.reason
    wrong = _set_parameter(derain_session, "precision",
                           ParameterValue(type=ParameterType.PARAMETER_STRING,
                                          string_value="fp16"))
    assert not wrong.successful and "read-only" in wrong.reason
    ok = _set_parameter(derain_session, "max_keypoints",
                        ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=40))
    assert ok.successful, ok.reason
    cloud = derain_session.send_and_wait(image_msg(sample_gray(0), sec=400))
    assert cloud.width == 40


def _double(value: float) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)


def _set_all(session: Session, **values: ParameterValue) -> None:
    for name, value in values.items():
        result = _set_parameter(session, name, value)
        assert result.successful, result.reason


def _assert_plain_sift(session: Session, gray: np.ndarray, sec: int) -> None:
    """The node's features of ``gray`` are exactly plain SIFT's."""
    features = cloud_to_features(session.send_and_wait(image_msg(gray, sec=sec)))
    plain = FeatureFrontEnd(FrontEndConfig(derain=False))(gray).features
    _assert_same_keypoints(features.xy, plain.xy)


def test_rain_gate_live(derain_session: Session) -> None:
    """A gate above the frame's rain level sends it through plain SIFT, counted on
    /diagnostics; a negative gate is refused."""
    for name in ("rain_gate", "local_rain_gate", "keypoint_rain_gate", "correction_strength"):
        bad = _set_parameter(derain_session, name, _double(-1.0))
        assert not bad.successful and name in bad.reason
    _set_all(derain_session, rain_gate=_double(255.0),
             max_keypoints=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=0))
    _assert_plain_sift(derain_session, sample_gray(1), sec=500)
    values = derain_session.latest_diagnostics(lambda v: int(v["frames_gated_dry"]) > 0)
    assert values["rain_gate"] == "255"
    _set_all(derain_session, rain_gate=_double(0.0))


def test_correction_options_live(derain_session: Session) -> None:
    """correction_strength 0 applies none of the nets' correction: exactly plain SIFT of the
    frame; flip_ensemble reaches the front end (diagnostics say so)."""
    def flip(on: bool) -> ParameterValue:
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=on)

    _set_all(derain_session, correction_strength=_double(0.0), flip_ensemble=flip(True))
    _assert_plain_sift(derain_session, sample_gray(0), sec=550)
    values = derain_session.latest_diagnostics(lambda v: v["flip_ensemble"] == "True")
    assert values["correction_strength"] == "0"
    _set_all(derain_session, correction_strength=_double(1.0), flip_ensemble=flip(False))


def test_keypoint_rain_gate_live(derain_session: Session) -> None:
    """A keypoint gate above every local correction takes every keypoint from the frame's own
    DoG: plain SIFT's positions (described on GGIRNet's gradients); diagnostics report it."""
    _set_all(derain_session, keypoint_rain_gate=_double(255.0))
    _assert_plain_sift(derain_session, sample_gray(1), sec=600)
    values = derain_session.latest_diagnostics(lambda v: v["keypoint_rain_gate"] == "255")
    assert values["rain_gate"] == "0"
    _set_all(derain_session, keypoint_rain_gate=_double(0.0))


def test_derain_node_exits_cleanly_on_sigint(derain_session: Session) -> None:
    assert derain_session.close(signal.SIGINT) == 0, derain_session.node.output()


def test_plain_sift_half_scale_sigterm(tmp_path: Path) -> None:
    """derain off, image_scale 0.5, bgr8 on a remapped topic with reliable QoS: keypoints in
    original pixels, equal to the front end's; SIGTERM exits with 0."""
    session = Session(tmp_path, {"derain": False, "image_scale": 0.5, "image_qos": "DEFAULT",
                                 "weights_dir": str(tmp_path / "nothing_here")},
                      remaps={"image": "/camera/image_raw"}, image_topic="/camera/image_raw")
    try:
        gray = sample_gray(1, (640, 480))
        cloud = session.send_and_wait(image_msg(gray, sec=7, frame_id="cam1", encoding="bgr8"))
        features = cloud_to_features(cloud)
        want = FeatureFrontEnd(FrontEndConfig(derain=False, scale=0.5))(gray).features
        _assert_same_keypoints(features.xy, want.xy)
        assert features.xy[:, 0].max() > 400 and features.xy[:, 1].max() > 300  # not halved
        assert (features.xy[:, 0] < 640).all() and (features.xy[:, 1] < 480).all()
        values = session.latest_diagnostics(lambda v: int(v["frames_processed"]) >= 1)
        assert values["derain"] == "False" and float(values["networks_ms"]) == 0.0, values
    finally:
        code = session.close(signal.SIGTERM)
    assert code == 0, session.node.output()


@pytest.mark.parametrize(("params", "expected"), [
    ({"derain": True}, "derain:=false"),
    ({"derain": False, "precision": "fp64"}, "precision must be one of"),
    ({"derain": False, "image_scale": 1}, "image_scale must be a float"),
])
def test_start_errors_are_clear(tmp_path: Path, params: dict, expected: str) -> None:
    params = {"weights_dir": str(tmp_path / "no_weights"), **params}
    node = NodeProcess(tmp_path, ros_env(tmp_path), params)
    code = node.wait_exit(60)
    assert code == 1, node.output()
    assert "cannot start" in node.output() and expected in node.output()
    assert "Traceback" not in node.output()
