"""`siftrain eval`: SIFT keypoint recovery of rainy input, pixel-L1 ablation, ours and clean."""

from __future__ import annotations

import argparse
import json
import platform
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ..evaluation.contrast_sweep import parse_thresholds
from ..evaluation.recovery import METHODS, evaluate, image_files, pair_files, trailing_number
from ..frontend import FrontEndConfig
from ..frontend.arguments import add_recovery_arguments, recovery_options
from ..rain import INTENSITIES, RainParams, add_rain
from ..sift import read_gray


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="keypoint recovery metrics against SIFT on the clean image",
        description="Pairs rainy and clean images (by name, by trailing number or "
                    "--pairs-list), or renders synthetic rain on --clean images; reports per "
                    "method: keypoints, recall, precision, localisation error, matching accuracy "
                    "(docs/recovery.md).")
    p.add_argument("--rainy", type=Path, help="folder of rainy images")
    p.add_argument("--clean", type=Path, required=True, help="folder of clean images")
    p.add_argument("--pairs-list", type=Path, help="lines 'RAINY CLEAN' (or one shared name)")
    p.add_argument("--numbers", default=None, metavar="A-B",
                   help="keep images whose trailing number is in A..B (e.g. 81-100)")
    p.add_argument("--synthetic-rain", choices=INTENSITIES,
                   help="render rain on the clean images instead of reading --rainy")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rain")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--limit", type=int, default=0, metavar="N", help="first N pairs only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights-dir", type=Path, default=None)
    add_recovery_arguments(p, 0.0, 0.0, 1.0)
    p.add_argument("--contrast-thresholds", type=_thresholds, default=(), metavar="T,T,...",
                   help="also sweep SIFT's contrast threshold of rainy, l1 and ours (OpenCV "
                        "units, e.g. 0.04,0.03,0.02,0.015,0.01; the clean reference keeps "
                        "0.04): recall and matching accuracy per threshold")
    p.add_argument("--json", type=Path, metavar="OUT")
    p.add_argument("--plot", type=Path, metavar="OUT.png")
    p.add_argument("--sweep-plot", type=Path, metavar="OUT.png",
                   help="with --contrast-thresholds: recall against matching accuracy per method")
    p.set_defaults(run=run)


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        return parse_thresholds(text)
    except ValueError as error:  # argparse shows an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(error)) from None


def _in_range(path: Path, numbers: str | None) -> bool:
    if not numbers:
        return True
    low, _, high = numbers.partition("-")
    number = trailing_number(path.name)
    return number is not None and int(low) <= number <= int(high or low)


def load_images(args: argparse.Namespace) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, rainy, clean) uint8 gray triples from the arguments."""
    if args.synthetic_rain:
        params = RainParams.preset(args.synthetic_rain)
        files = [p for p in image_files(args.clean) if _in_range(p, args.numbers)]
        if args.limit:
            files = files[: args.limit]
        if not files:
            raise ValueError(f"no images in {args.clean}")
        out = []
        for index, path in enumerate(files):
            clean = read_gray(path)
            # One seed per image, derived from --seed and its position (as rain.rainy_pairs).
            seed = int(np.random.SeedSequence((args.seed, index)).generate_state(1)[0])
            out.append((path.name, add_rain(clean, seed, params), clean))
        return out
    if args.rainy is None:
        raise ValueError("give --rainy DIR, or --synthetic-rain PRESET")
    pairs = [(r, c) for r, c in pair_files(args.rainy, args.clean, args.pairs_list)
             if _in_range(r, args.numbers)]
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        raise ValueError("no pairs left after --numbers/--limit")
    return [(r.name, read_gray(r), read_gray(c)) for r, c in pairs]


def print_table(result: dict, title: str) -> None:
    table = Table(title=title)
    for column in ("method", "keypoints", "recall", "precision", "loc. error px",
                   "matching acc.", "recall gap closed"):
        table.add_column(column, justify="right")
    for method, m in result["methods"].items():
        gap = result["gap_closed"].get(method)
        table.add_row(method, f"{m['keypoints']:.0f}", f"{m['recall']:.3f}",
                      f"{m['precision']:.3f}", f"{m['localisation_px']:.2f}",
                      f"{m['matching_accuracy']:.3f}", "" if gap is None else f"{gap:.1%}")
    Console().print(table)


def print_recall_by_octave(result: dict) -> None:
    by_octave = result["recall_by_octave"]
    octaves = sorted({int(o) for rows in by_octave.values() for o in rows})
    if not octaves:
        return
    table = Table(title="Recall by octave of the clean keypoint (-1: the 2x upsampled base)")
    table.add_column("method", justify="right")
    for octave in octaves:
        table.add_column(f"octave {octave}", justify="right")
    first = next(iter(by_octave.values()))
    table.add_row("clean keypoints", *(f"{first.get(str(o), {}).get('reference', 0):.0f}"
                                       for o in octaves))
    for method, rows in by_octave.items():
        table.add_row(method, *(f"{rows[str(o)]['recall']:.3f}" if str(o) in rows else ""
                                for o in octaves))
    Console().print(table)


def print_overlap_with_rainy(overlap: dict) -> None:
    if not overlap:
        return
    table = Table(title="Clean keypoints recovered by the method and by SIFT on the rainy "
                        "image (shares of all, pooled)")
    for column in ("method", "both", "method only", "rainy only", "either"):
        table.add_column(column, justify="right")
    for method, row in overlap.items():
        table.add_row(method, *(f"{row[k]:.3f}"
                                for k in ("both", "method_only", "rainy_only", "either")))
    Console().print(table)


def print_contrast_sweep(sweep: dict) -> None:
    table = Table(title="Along SIFT's contrast threshold (the clean reference keeps 0.04)")
    for column in ("method", "threshold", "keypoints", "recall", "precision", "matching acc."):
        table.add_column(column, justify="right")
    for method, rows in sweep.items():
        for row in rows:
            table.add_row(method, f"{row['contrast_threshold']:g}", f"{row['keypoints']:.0f}",
                          f"{row['recall']:.3f}", f"{row['precision']:.3f}",
                          f"{row['matching_accuracy']:.3f}")
    Console().print(table)


def _pyplot() -> ModuleType:
    """matplotlib.pyplot, headless, imported only when a plot is asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_sweep_plot(sweep: dict, path: Path, title: str) -> None:
    """Recall (y) against matching accuracy (x), one line per method, points labelled with
    their threshold: up and to the right is better on both."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, rows in sweep.items():
        x = [r["matching_accuracy"] for r in rows]
        y = [r["recall"] for r in rows]
        ax.plot(x, y, marker="o", label=method)
        for r, xi, yi in zip(rows, x, y, strict=True):
            ax.annotate(f"{r['contrast_threshold']:g}", (xi, yi), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("matching accuracy")
    ax.set_ylabel("recall of the clean keypoints")
    ax.set_title(textwrap.fill(title, 80), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_plot(result: dict, path: Path, title: str) -> None:
    plt = _pyplot()

    metrics = ("recall", "precision", "matching_accuracy")
    methods = list(result["methods"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = [result["methods"][method][k] for k in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, values, width, label=method)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {', '.join(METHODS)}")
    images = load_images(args)
    gates = FrontEndConfig(**recovery_options(args))
    if args.sweep_plot and not args.contrast_thresholds:
        raise ValueError("--sweep-plot needs --contrast-thresholds")
    result = evaluate(images, methods, args.device, args.weights_dir, progress=True,
                      frontend=gates, contrast_thresholds=args.contrast_thresholds)
    source = (f"{args.clean} + synthetic {args.synthetic_rain} rain (seed {args.seed})"
              if args.synthetic_rain else f"{args.rainy} vs {args.clean}")
    title = f"SIFT keypoint recovery, {len(images)} images: {source}"
    print_table(result, title)
    print_table(result["at_clean_budget"],
                "At the clean image's keypoint count (each method's N strongest by response)")
    print_recall_by_octave(result)
    print_overlap_with_rainy(result["recovered_with_rainy"])
    if "contrast_sweep" in result:
        print_contrast_sweep(result["contrast_sweep"])
    for method, m in result["methods"].items():
        if args.rain_gate > 0 and "gated_dry_share" in m:
            print(f"rain gate {args.rain_gate:g}: {method} ran plain SIFT on "
                  f"{m['gated_dry_share']:.0%} of the images")
    if args.json:
        report = {"source": source, "images": len(images), "methods_order": methods,
                  "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                  "cpu_threads": torch.get_num_threads(), "device": args.device,
                  **recovery_options(args), **result}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, allow_nan=True))
    if args.plot:
        save_plot(result, args.plot, title)
    if args.sweep_plot:
        save_sweep_plot(result["contrast_sweep"], args.sweep_plot, title)
    return 0
