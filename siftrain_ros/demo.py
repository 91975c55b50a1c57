"""The end-to-end demo: two ``siftrain_node`` processes (derain on, and plain SIFT), a bag player
process replaying a rainy sequence, and a consumer here that prints per-frame keypoints,
latency and how many of the clean frame's keypoints each node re-finds, then writes an overlay.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .bags.demo import CLEAN_TOPIC, IMAGE_TOPIC, INFO_TOPIC, write_demo_bag
from .bags.store import stamp_ns, typestore
from .evaluation.matching import nearest_neighbours
from .frontend import FeatureFrontEnd, FrontEndConfig
from .frontend.weights import MODELS, weights_path
from .sift import Features

MATCH_PX = 2.0  # a clean keypoint counts as re-found within this many pixels
NODES = ("derain", "plain")


def _warn(text: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n{text}\n{bar}\n", file=sys.stderr, flush=True)


def _missing_weights(directory: Path | None) -> list[Path]:
    return [p for p in (weights_path(n, "lite", directory) for n in set(MODELS["ours"]))
            if not p.is_file()]


def _node(name: str, derain: bool, args: argparse.Namespace, env: dict[str, str],
          log: Path) -> subprocess.Popen:
    params = {"derain": str(derain).lower(), "image_scale": str(args.scale),
              "device": args.device, "backend": "torch", "image_qos": "DEFAULT"}
    if args.weights_dir is not None:  # an empty `-p x:=` does not parse: leave it out
        params["weights_dir"] = str(args.weights_dir)
    cmd = [sys.executable, "-m", "siftrain_ros.node", "--ros-args", "-r", f"__ns:=/{name}",
           "-r", f"image:={IMAGE_TOPIC}", "-r", f"camera_info:={INFO_TOPIC}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _clean_features(bag: Path, scale: float) -> tuple[dict[int, Features], dict[int, np.ndarray]]:
    """Plain SIFT on the clean frames (the reference), and the rainy frames, by stamp."""
    from rosbags.rosbag2 import Reader

    from .node.decode import decode_image

    frontend = FeatureFrontEnd(FrontEndConfig(derain=False, scale=scale))
    clean, rainy = {}, {}
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic not in (CLEAN_TOPIC, IMAGE_TOPIC):
                continue
            msg = typestore().deserialize_cdr(raw, conn.msgtype)
            gray = decode_image(msg)
            if conn.topic == CLEAN_TOPIC:
                clean[stamp_ns(msg.header)] = frontend(gray).features
            else:
                rainy[stamp_ns(msg.header)] = gray
    return clean, rainy


def _refound(clean: Features, got: Features) -> int:
    if len(clean) == 0 or len(got) == 0:
        return 0
    distance, _ = nearest_neighbours(clean.xy, got.xy)
    return int((distance < MATCH_PX).sum())


def _overlay(gray: np.ndarray, clean: Features, derained: Features, plain: Features) -> np.ndarray:
    """Rainy frame; clean-frame keypoints blue, derain-on green, plain SIFT red."""
    canvas = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    for features, colour, radius in ((clean, (255, 128, 0), 5), (plain, (0, 0, 255), 3),
                                     (derained, (0, 255, 0), 2)):
        for x, y in features.xy.tolist():
            cv2.circle(canvas, (round(x), round(y)), radius, colour, 1, cv2.LINE_AA)
    cv2.putText(canvas, "blue: clean SIFT  red: plain SIFT on rain  green: derain on",
                (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def run_demo(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from .ros.feature_cloud import cloud_to_features

    started = time.monotonic()
    derain = True
    missing = _missing_weights(args.weights_dir)
    if missing:
        derain = False
        _warn("WARNING: network weights not found: "
              + ", ".join(str(p) for p in missing)
              + "\nThe demo runs with derain OFF on both nodes: 'derain' numbers below are "
              "plain SIFT.\nTrain the nets or pass --weights-dir to see the rain recovery.")

    work = Path(tempfile.mkdtemp(prefix="siftrain_demo_"))
    bag = work / "rainy_bag"
    write_demo_bag(bag, frames=args.frames, seed=args.seed)
    print(f"rainy sequence: {args.frames} frames 640x480 (bundled TUM fr2/desk + synthetic "
          f"heavy rain) in {bag}")
    clean, rainy = _clean_features(bag, args.scale)

    env = dict(os.environ)
    domain = int(env.get("ROS_DOMAIN_ID") or random.randint(1, 100))
    env.update(ROS_DOMAIN_ID=str(domain), ROS_LOG_DIR=str(work / "ros_log"))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE",)})
    nodes = {name: _node(name, derain and name == "derain", args, env, work / f"{name}.log")
             for name in NODES}

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    consumer = rclpy.create_node("siftrain_demo_consumer", context=context)
    lock = threading.Lock()
    arrivals: dict[str, dict[int, tuple[float, Any]]] = {"image": {}, **{n: {} for n in NODES}}

    def keep(key: str) -> Any:
        def callback(msg: Any) -> None:
            with lock:
                arrivals[key][stamp_ns(msg.header)] = (time.monotonic(), msg)
        return callback

    consumer.create_subscription(Image, IMAGE_TOPIC, keep("image"), 10)
    # Only so that the player can wait for the same subscriber count on both of its topics.
    consumer.create_subscription(CameraInfo, INFO_TOPIC, lambda _: None, 10)
    for name in NODES:
        consumer.create_subscription(PointCloud2, f"/{name}/features", keep(name), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(consumer)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    code = 0
    player = None
    try:
        deadline = time.monotonic() + 90
        while not all("]: ready" in (work / f"{n}.log").read_text() for n in NODES):
            for name, proc in nodes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"node {name} exited:\n{(work / f'{name}.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("nodes did not start within 90 s")
            time.sleep(0.2)
        print(f"nodes ready ({time.monotonic() - started:.0f} s): /derain (derain "
              f"{'on' if derain else 'OFF'}) and /plain (plain SIFT), image_scale {args.scale}; "
              f"playing the bag at {args.rate}x")
        player = subprocess.Popen(
            [sys.executable, "-m", "siftrain_ros", "bag", "play", str(bag), "--rate",
             str(args.rate), "--topics", IMAGE_TOPIC, INFO_TOPIC, "--wait-subscribers", "20",
             # Both nodes and this consumer: the first frames must reach all three.
             "--min-subscribers", str(len(NODES) + 1)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        player_out, _ = player.communicate(timeout=300)
        # The newest frame always gets processed (newest wins): wait for it on both nodes.
        last_stamp = max(rainy)
        until = time.monotonic() + 30
        while time.monotonic() < until:
            with lock:
                if all(last_stamp in arrivals[n] for n in NODES):
                    break
            time.sleep(0.1)
        print(player_out.strip())
        code = _report(arrivals, lock, clean, rainy, args.out, cloud_to_features)
    except Exception as error:  # noqa: BLE001 - one clear line, then clean up
        print(f"siftrain demo: error: {error}", file=sys.stderr)
        code = 1
    finally:
        if player is not None and player.poll() is None:
            player.kill()
        for name, proc in nodes.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            print(f"node /{name} exited with code {rc}")
            code = code or (rc != 0)
        executor.shutdown(timeout_sec=2)
        # The spin thread must be out of rclpy's C++ before the node and context go, or the
        # interpreter can exit with it inside a wait set (std::terminate, exit code 134).
        spinner.join(timeout=5)
        consumer.destroy_node()
        rclpy.try_shutdown(context=context)
    if missing:
        _warn("REMINDER: derain was OFF (weights missing); the numbers compare plain SIFT "
              "with itself.")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    return int(code)


def _report(arrivals: dict, lock: threading.Lock, clean: dict[int, Features],
            rainy: dict[int, np.ndarray], out: Path, parse: Any) -> int:
    with lock:
        images = dict(arrivals["image"])
        clouds = {n: dict(arrivals[n]) for n in NODES}
    header = (f"{'frame':>5} {'stamp':>20} {'clean kp':>8} {'derain kp':>9} {'plain kp':>8} "
              f"{'re-found derain':>15} {'re-found plain':>14} {'latency ms':>10}")
    print(header)
    totals = {"derain": 0, "plain": 0, "clean": 0}
    last = None
    for i, stamp in enumerate(sorted(rainy)):
        got = {n: parse(clouds[n][stamp][1]) for n in NODES if stamp in clouds[n]}
        ref = clean[stamp]
        cells = {n: (f"{len(got[n])}" if n in got else "dropped") for n in NODES}
        found = {n: (_refound(ref, got[n]) if n in got else None) for n in NODES}
        latency = "-"
        if "derain" in got and stamp in images:
            latency = f"{(clouds['derain'][stamp][0] - images[stamp][0]) * 1000:.0f}"
        if all(n in got for n in NODES):
            totals["clean"] += len(ref)
            for n in NODES:
                totals[n] += found[n] or 0
            last = stamp, got
        print(f"{i:>5} {stamp:>20} {len(ref):>8} {cells['derain']:>9} {cells['plain']:>8} "
              f"{found['derain'] if found['derain'] is not None else '-':>15} "
              f"{found['plain'] if found['plain'] is not None else '-':>14} {latency:>10}")
    if last is None:
        print("no frame reached both nodes: nothing to compare")
        return 1
    share = {n: totals[n] / max(totals["clean"], 1) for n in NODES}
    print(f"clean-frame keypoints re-found within {MATCH_PX:g} px over frames seen by both: "
          f"derain {totals['derain']} ({share['derain']:.1%}), plain SIFT on rain "
          f"{totals['plain']} ({share['plain']:.1%}) of {totals['clean']}")
    out.mkdir(parents=True, exist_ok=True)
    stamp, got = last
    path = out / "demo_overlay.png"
    cv2.imwrite(str(path), _overlay(rainy[stamp], clean[stamp], got["derain"], got["plain"]))
    print(f"overlay: {path}")
    return 0
