"""`siftrain build-engines`: build the TensorRT engines ahead of time (no inference)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..engines import FLAVOURS
from ..engines.tensorrt_backend import is_strongly_typed
from ..export import ensure_onnx
from ..frontend.factory import PRECISIONS, default_engine_dir
from ..frontend.tensorrt_frontend import (
    DEFAULT_WORKSPACE_MB,
    build_net_engine,
    import_flavour,
    onnx_precision_for,
)
from ..frontend.weights import MODELS
from .bench import parse_size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engines", help="build TensorRT engines ahead of deployment",
                       description="Exports the networks to ONNX if needed and builds (or "
                                   "validates cached) engines for frames of --size x --scale, "
                                   "into the engine cache that extract and the node use.")
    p.add_argument("--precision", choices=PRECISIONS, default="fp16")
    p.add_argument("--size", type=parse_size, default=(640, 480), metavar="WxH",
                   help="camera image size (default 640x480)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="processing scale; engines are built for round(S x size)")
    p.add_argument("--engine-dir", type=Path, default=None, metavar="DIR",
                   help="default $SIFTRAIN_ENGINE_DIR or ~/.cache/siftrain_ros/engines")
    p.add_argument("--weights-dir", type=Path, default=None, metavar="DIR")
    p.add_argument("--model", choices=sorted(MODELS), default="ours")
    p.add_argument("--flavour", choices=FLAVOURS, default="tensorrt")
    p.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB, metavar="MB",
                   help=f"builder workspace limit (default {DEFAULT_WORKSPACE_MB}; lower on "
                        "8 GB Jetsons)")
    p.add_argument("--compute-capability", nargs="+", default=None, metavar="CC",
                   help="tensorrt_rtx targets, e.g. 8.6 8.9 (default: its Ampere+ set)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0.05 <= args.scale <= 4.0:
        raise ValueError(f"scale must be in [0.05, 4], got {args.scale}")
    if args.workspace_mb < 16:
        raise ValueError(f"--workspace-mb must be at least 16, got {args.workspace_mb}")
    trt_mod = import_flavour(args.flavour)  # the clear "not installed" error comes first
    engine_dir = args.engine_dir or default_engine_dir()
    width, height = (max(1, round(v * args.scale)) for v in args.size)
    graph = onnx_precision_for(args.precision, is_strongly_typed(trt_mod), has_calibration=True)
    print(f"{args.flavour} {trt_mod.__version__}: {args.precision} engines for {width}x{height} "
          f"frames from {graph} ONNX, into {engine_dir}", flush=True)
    for name in dict.fromkeys(MODELS[args.model]):
        onnx = ensure_onnx(name, "lite", weights_dir=args.weights_dir, out_dir=engine_dir,
                           precision=graph, log=lambda m: print(m, flush=True))
        start = time.perf_counter()
        print(f"[{name}] {onnx.name}: building or validating ...", flush=True)
        result = build_net_engine(onnx, engine_dir, precision=args.precision,
                                  size_hw=(height, width), flavour=args.flavour,
                                  workspace_mb=args.workspace_mb,
                                  compute_capabilities=args.compute_capability,
                                  build_only=True, log=lambda m: print(f"  {m}", flush=True))
        state = "built" if result.built else "up to date"
        print(f"[{name}] {state}: {result.engine_path} "
              f"({result.engine_path.stat().st_size / 2**20:.1f} MiB, "
              f"{time.perf_counter() - start:.1f} s)", flush=True)
    return 0
