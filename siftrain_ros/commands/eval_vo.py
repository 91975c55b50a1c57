"""`siftrain eval-vo`: relative-pose accuracy (rotation, translation direction, inliers) of
clean / rainy / derained SIFT on a sequence with ground-truth poses (docs/odometry.md)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..frontend import FrontEndConfig
from ..frontend.arguments import add_recovery_arguments, recovery_options
from ..rain.params import INTENSITIES, Intensity
from ..sift import SiftConfig


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers like 1,5,10, got {text!r}")
    return values


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-vo", help="relative-pose errors of rainy / ours / clean SIFT against ground truth",
        description="For frame pairs at several gaps: match (mutual L2 + ratio + rotation "
                    "histogram), essential matrix (RANSAC) + recoverPose, and compare with the "
                    "ground-truth relative pose (docs/odometry.md).")
    p.add_argument("--frames", type=Path, required=True, help="folder of frames")
    p.add_argument("--poses", type=Path, required=True, help="ground-truth poses file")
    p.add_argument("--intrinsics", required=True, metavar="FX,FY,CX,CY")
    p.add_argument("--distortion", default="", metavar="K1,K2,P1,P2[,K3]",
                   help="plumb_bob coefficients (keypoints are undistorted before the "
                        "essential matrix); default none")
    p.add_argument("--format", choices=("tum", "kitti"), default="tum")
    p.add_argument("--associations", type=Path, default=None,
                   help="TUM associations (rgb_time rgb_file ...); default: frame names are "
                        "timestamps")
    p.add_argument("--rain", choices=("none", "synthetic"), default="synthetic")
    p.add_argument("--rain-preset", choices=INTENSITIES, default="heavy")
    p.add_argument("--seed", type=int, default=0, help="rain seed (one derived seed per frame)")
    p.add_argument("--methods", default="rainy,ours,clean")
    p.add_argument("--gaps", type=_int_list, default=[1, 5, 10])
    p.add_argument("--scale", type=float, default=1.0,
                   help="front-end processing scale (keypoints stay in input pixels)")
    p.add_argument("--ratio", type=float, default=0.8, help="Lowe ratio")
    p.add_argument("--contrast-threshold", type=float, default=SiftConfig.contrast_threshold,
                   metavar="T", help="SIFT contrast threshold of every method (OpenCV units, "
                                     "default %(default)g)")
    p.add_argument("--ransac-threshold", type=float, default=1.0, metavar="PX")
    p.add_argument("--estimator", choices=("ransac", "usac_accurate"), default="usac_accurate",
                   help="essential-matrix estimator (docs/odometry.md)")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="first N frames only")
    p.add_argument("--weights-dir", type=Path, default=None)
    add_recovery_arguments(p, 0.0, 0.0, 1.0)
    p.add_argument("--json", type=Path, metavar="OUT")
    p.add_argument("--plot", type=Path, metavar="OUT.png")
    p.set_defaults(run=run)


def _extractors(methods: list[str], ours: FrontEndConfig, weights_dir: Path | None) -> dict:
    """method -> callable(gray) -> Features, and whether it reads the rainy frame. ``ours`` is
    the derained method's front-end configuration; the others run plain SIFT at its scale."""
    from ..frontend import FeatureFrontEnd, make_backend

    plain = FeatureFrontEnd(FrontEndConfig(derain=False, scale=ours.scale, sift=ours.sift))
    out = {}
    for method in methods:
        if method == "clean":
            out[method] = (plain, False)
        elif method == "rainy":
            out[method] = (plain, True)
        elif method == "ours":
            backend = make_backend("torch", weights_dir=weights_dir,
                                   log=lambda line: print(line, file=sys.stderr))
            out[method] = (FeatureFrontEnd(ours, backend), True)
    return out


def compute_features(frames: list[Path], methods: list[str], rain: str, preset: Intensity,
                     seed: int, ours: FrontEndConfig, weights_dir: Path | None
                     ) -> tuple[dict, dict]:
    """Features per method per frame (each computed once), and mean extraction ms. ``ours``:
    the front-end configuration of the derained method (scale, gates)."""
    from ..rain import RainParams, add_rain
    from ..sift import read_gray

    extractors = _extractors(methods, ours, weights_dir)
    params = RainParams.preset(preset)
    features: dict[str, list] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for index, path in enumerate(frames):
        clean = read_gray(path)
        rainy = clean
        if rain == "synthetic":
            # A different, reproducible seed per frame (same derivation as `siftrain eval`).
            frame_seed = int(np.random.SeedSequence((seed, index)).generate_state(1)[0])
            rainy = add_rain(clean, frame_seed, params)
        for method, (frontend, uses_rainy) in extractors.items():
            start = time.perf_counter()
            features[method].append(frontend(rainy if uses_rainy else clean).features)
            times[method].append((time.perf_counter() - start) * 1000)
        print(f"\r features: frame {index + 1}/{len(frames)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return features, {m: float(np.mean(v)) for m, v in times.items()}


def print_table(result: dict, gaps: list[int], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("method", "gap", "pairs", "fail", "med. rot. err °", "med. t-dir err °",
                   "mean rot. err °", "mean t-dir err °", "matches", "inliers", "inlier ratio"):
        table.add_column(column, justify="right")
    for method, by_gap in result["summary"].items():
        for gap in [str(g) for g in gaps] + ["all"]:
            s = by_gap[gap]
            table.add_row(method, gap, str(s["pairs"]), str(s["failures"]),
                          f"{s['median_rotation_error_deg']:.2f}",
                          f"{s['median_translation_error_deg']:.1f}",
                          f"{s['mean_rotation_error_deg']:.2f}",
                          f"{s['mean_translation_error_deg']:.1f}", f"{s['mean_matches']:.0f}",
                          f"{s['mean_inliers']:.0f}", f"{s['mean_inlier_ratio']:.2f}")
    Console(width=140).print(table)


def save_plot(result: dict, gaps: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (("median_rotation_error_deg", "median rotation error (deg)"),
            ("median_translation_error_deg", "median translation-dir. error (deg)"),
            ("mean_inliers", "mean inliers"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (key, label) in zip(axes, keys, strict=True):
        for method, by_gap in result["summary"].items():
            ax.plot(gaps, [by_gap[str(g)][key] for g in gaps], marker="o", label=method)
        ax.set_xlabel("frame gap")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def weights_digests(weights_dir: Path | None) -> dict[str, str]:
    """sha256 of the DPRNet/GGIRNet weights ``ours`` used (results depend on the exact file)."""
    import hashlib

    from ..frontend.weights import weights_path

    out = {}
    for name in ("dprnet", "ggirnet"):
        path = weights_path(name, "lite", weights_dir)
        out[name] = (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file()
                     else "missing")
    return out


def run(args: argparse.Namespace) -> int:
    from ..vo.evaluate import METHODS, evaluate_pairs, load_sequence
    from ..vo.geometry import Intrinsics, PoseConfig
    from ..vo.matching import MatchConfig

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {', '.join(METHODS)}")
    if not 0.05 <= args.scale <= 4.0:
        raise ValueError(f"--scale must be in [0.05, 4], got {args.scale}")
    intrinsics = Intrinsics.parse(args.intrinsics)
    if args.distortion:
        intrinsics = Intrinsics(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy,
                                tuple(float(v) for v in args.distortion.split(",")))
    sequence = load_sequence(args.frames, args.poses, args.format, args.associations)
    frames, poses = sequence.frames, sequence.poses
    if args.limit:
        frames, poses = frames[: args.limit], poses[: args.limit]
    if len(frames) < 2:
        raise ValueError("need at least 2 frames")
    gaps = [g for g in args.gaps if g < len(frames)]
    if not gaps:
        raise ValueError(f"every gap in {args.gaps} is >= the {len(frames)} frames")

    # Hash before extracting: a weights file replaced mid-run would otherwise go unnoticed.
    digests = weights_digests(args.weights_dir) if "ours" in methods else {}
    start = time.perf_counter()
    ours = FrontEndConfig(derain=True, scale=args.scale, **recovery_options(args),
                          sift=SiftConfig(contrast_threshold=args.contrast_threshold))
    features, extract_ms = compute_features(frames, methods, args.rain, args.rain_preset,
                                            args.seed, ours, args.weights_dir)
    result = evaluate_pairs(features, poses, gaps, intrinsics, MatchConfig(ratio=args.ratio),
                            PoseConfig(threshold_px=args.ransac_threshold, seed=args.seed,
                                       estimator=args.estimator))
    elapsed = time.perf_counter() - start
    rain = (f"synthetic {args.rain_preset} rain, seed {args.seed}" if args.rain == "synthetic"
            else "no rain")
    title = (f"Relative pose vs ground truth: {len(frames)} frames, {rain}, scale "
             f"{args.scale:g}, {args.estimator}")
    print_table(result, gaps, title)
    print("mean keypoints per frame: " + ", ".join(
        f"{m} {np.mean([len(f) for f in features[m]]):.0f}" for m in methods)
        + "; extraction ms/frame: " + ", ".join(f"{m} {v:.0f}" for m, v in extract_ms.items())
        + f"; total {elapsed:.1f} s")
    if digests:
        print("weights sha256: " + ", ".join(f"{k} {v[:16]}" for k, v in digests.items()))
    if args.json:
        import torch

        report = {
            "command": "siftrain " + " ".join(sys.argv[1:]) if sys.argv else "",
            "frames": [str(p) for p in frames], "gaps": gaps, "methods": methods,
            "rain": args.rain, "rain_preset": args.rain_preset, "seed": args.seed,
            **recovery_options(args),
            "scale": args.scale, "intrinsics": [intrinsics.fx, intrinsics.fy, intrinsics.cx,
                                                intrinsics.cy],
            "distortion": list(intrinsics.distortion), "ratio": args.ratio,
            "contrast_threshold": args.contrast_threshold,
            "ransac_threshold_px": args.ransac_threshold, "estimator": args.estimator,
            "keypoints_mean": {m: float(np.mean([len(f) for f in features[m]]))
                               for m in methods},
            "extract_ms_mean": extract_ms, "weights_sha256": digests, "elapsed_s": elapsed,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpu_threads": torch.get_num_threads(), **result,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, allow_nan=True))
    if args.plot:
        save_plot(result, gaps, args.plot, title)
    return 0
