"""`siftrain export-onnx [--out engines/]`: DPRNet/GGIRNet as ONNX graphs with dynamic H/W."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..export import check_onnx, ensure_onnx
from ..frontend.weights import MODELS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="export the deraining networks to ONNX",
                       description="Writes <net>_<preset>.onnx (fp32) and <net>_<preset>.fp16.onnx "
                                   "with input 'image' (1,1,H,W) float 0..1 and output "
                                   "'derained', dynamic H and W; checks them with onnx.checker "
                                   "and a TensorRT operator allow-list. Up-to-date files are "
                                   "kept.")
    p.add_argument("--out", type=Path, default=Path("engines"), metavar="DIR")
    p.add_argument("--weights-dir", type=Path, default=None, metavar="DIR",
                   help="network weights (default: shipped weights)")
    p.add_argument("--model", choices=sorted(MODELS), default="ours")
    p.add_argument("--precision", nargs="+", choices=("fp32", "fp16"), default=["fp32", "fp16"],
                   help="graph precisions to export (default: both)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name in dict.fromkeys(MODELS[args.model]):  # l1 serves both: export it once
        for precision in args.precision:
            path = ensure_onnx(name, "lite", weights_dir=args.weights_dir, out_dir=args.out,
                               precision=precision)
            ops = check_onnx(path)
            print(f"{path}: onnx.checker ok, {len(ops)} operator types, all TensorRT-supported")
    return 0
