"""A rainy image sequence as a rosbag2: the bundled TUM fr2/desk frames, looped with small
camera jitter, synthetic rain per frame, plus camera_info (TUM fr2 intrinsics)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .. import samples
from ..rain import RainParams, add_rain
from .store import open_writer, typestore

# TUM RGB-D freiburg2 (fx, fy, cx, cy); the ROS default calibration of the Kinect (no
# distortion model applied here: the bundled frames are used as they are).
TUM_FR2_INTRINSICS = (520.9, 521.0, 325.1, 249.7)
IMAGE_TOPIC = "/camera/rgb/image_color"
CLEAN_TOPIC = "/camera/rgb/image_clean"
INFO_TOPIC = "/camera/rgb/camera_info"
FRAME_ID = "openni_rgb_optical_frame"
START_NS = 1_311_868_164_000_000_000  # around the TUM fr2/desk recording; any fixed time works


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small random shift and rotation (hand-held camera), border replicated."""
    h, w = image.shape[:2]
    angle = float(rng.uniform(-1.5, 1.5))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += rng.uniform(-6, 6, size=2)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def write_demo_bag(out: Path, frames: int = 20, seed: int = 0, rate_hz: float = 10.0,
                   storage: str = "sqlite3", rain: str = "heavy", clean: bool = True) -> int:
    """Write ``frames`` rainy bgr8 images (and camera_info; the clean frames on
    ``CLEAN_TOPIC`` when ``clean``) at ``rate_hz``. Returns the number of images written.

    Raises:
        ValueError: bad arguments or ``out`` exists.
    """
    if frames < 1 or rate_hz <= 0:
        raise ValueError(f"need frames >= 1 and rate > 0, got {frames}, {rate_hz}")
    sources = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in samples.tum_frames()]
    if not sources or any(s is None for s in sources):
        raise ValueError("bundled TUM sample frames are missing")
    types = typestore().types
    Image, CameraInfo = types["sensor_msgs/msg/Image"], types["sensor_msgs/msg/CameraInfo"]
    Header, Time = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]
    RegionOfInterest = types["sensor_msgs/msg/RegionOfInterest"]
    fx, fy, cx, cy = TUM_FR2_INTRINSICS
    rng = np.random.default_rng(seed)
    params = RainParams.preset(rain)
    with open_writer(out, storage) as writer:
        image_conn = writer.add_connection(IMAGE_TOPIC, Image.__msgtype__, typestore=typestore())
        info_conn = writer.add_connection(INFO_TOPIC, CameraInfo.__msgtype__,
                                          typestore=typestore())
        clean_conn = (writer.add_connection(CLEAN_TOPIC, Image.__msgtype__,
                                            typestore=typestore()) if clean else None)
        for i in range(frames):
            # Ping-pong through the frames so the motion stays plausible when looping.
            cycle = list(range(len(sources))) + list(range(len(sources) - 2, 0, -1))
            frame = _jitter(sources[cycle[i % len(cycle)]], rng)
            rainy = add_rain(frame, seed=seed * 10_000 + i, params=params)
            t = START_NS + round(i * 1e9 / rate_hz)
            header = Header(stamp=Time(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000),
                            frame_id=FRAME_ID)
            h, w = rainy.shape[:2]

            def image(pixels: np.ndarray, header: object = header, h: int = h,
                      w: int = w) -> object:
                return Image(header=header, height=h, width=w, encoding="bgr8", is_bigendian=0,
                             step=w * 3, data=np.ascontiguousarray(pixels).reshape(-1))

            writer.write(image_conn, t, typestore().serialize_cdr(image(rainy),
                                                                  Image.__msgtype__))
            if clean_conn is not None:
                writer.write(clean_conn, t, typestore().serialize_cdr(image(frame),
                                                                      Image.__msgtype__))
            info = CameraInfo(
                header=header, height=h, width=w, distortion_model="plumb_bob",
                d=np.zeros(5), k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], float),
                r=np.eye(3).reshape(-1), p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0],
                                                    float),
                binning_x=0, binning_y=0,
                roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                     do_rectify=False))
            writer.write(info_conn, t, typestore().serialize_cdr(info, CameraInfo.__msgtype__))
    return frames
