"""`siftrain train dprnet|ggirnet|l1`: train a lite network and export its weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..frontend.weights import save_net
from ..nets import build_net
from ..training import (
    Augmentation,
    PatchSampler,
    TrainConfig,
    Trainer,
    default_data_root,
    load_training_images,
    validation_pairs,
)
from ..training.data import PRESET_PROBABILITIES, checked_rain_mix
from ..training.trainer import ARCHITECTURE


def _rain_mix(text: str) -> tuple[float, ...]:
    """``"0.2,0.3,0.3,0.2"`` -> probabilities of the light, medium, heavy and dense presets
    (``"0.4,0.4,0.2"``: the first three, no dense rain)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()  # not numbers: reported like any other malformed mix
    try:
        return checked_rain_mix(values)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train DPRNet, GGIRNet or the pixel-L1 ablation (lite)",
                       description="Random gray crops with synthetic rain plus real Rain100H "
                                   "1..80 pairs; validation by SIFT keypoint F1 / matching "
                                   "accuracy on Rain100H 81..84; resumable checkpoints in --out.")
    p.add_argument("kind", choices=sorted(ARCHITECTURE))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, metavar="CKPT_DIR",
                   help="checkpoint directory (default checkpoints/<kind>)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from CKPT_DIR/last.pt")
    start.add_argument("--init", type=Path, default=None, metavar="WEIGHTS.safetensors",
                       help="start a new run from these weights (e.g. the shipped ones) "
                            "instead of a random net: fine-tuning, new optimizer, step 0")
    p.add_argument("--val-every", type=int, default=100, metavar="K")
    p.add_argument("--val-pairs", type=int, default=4, metavar="N",
                   help="Rain100H validation pairs 81..80+N used to pick the best checkpoint")
    p.add_argument("--val-dry", action="store_true",
                   help="also validate on the clean images as input; select by the mean of the "
                        "rainy and the dry score")
    p.add_argument("--restart-selection", action="store_true",
                   help="with --resume: forget the best score so far and validate the resumed "
                        "weights first (when the data mix or the selection rule changed)")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="SECONDS",
                   help="stop cleanly after this wall time (0: no limit)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--clean-fraction", type=float, default=0.0, metavar="F",
                   help="share of rain-free crops (input = target) that teach the net to leave "
                        "dry content alone (0..1; default 0, as rounds 1-3)")
    p.add_argument("--recall-weight", type=float, default=1.0, metavar="R",
                   help="dprnet: weight of the clean image's keypoints in the interest point "
                        "loss relative to the output's (>= 1; default 1, as rounds 1-4)")
    p.add_argument("--keep-weight", type=float, default=1.0, metavar="K",
                   help="dprnet: weight of the clean keypoints that the rainy input already "
                        "has, in the interest point loss (>= 1; default 1, as rounds 1-12)")
    p.add_argument("--upsampled-octave", action="store_true",
                   help="dprnet/ggirnet: include OpenCV's 2x upsampled octave -1 in the loss "
                        "pyramids (most keypoints live there; ~3x slower dprnet steps; off as "
                        "rounds 1-7)")
    p.add_argument("--real-fraction", type=float, default=0.3, metavar="F",
                   help="share of the rainy crops taken from the real Rain100H 1..80 pairs "
                        "(heavy rain); the rest get synthetic rain (default 0.3)")
    p.add_argument("--transplant-fraction", type=float, default=0.0, metavar="F",
                   help="share of those real-pair crops whose rain layer (rainy - clean) is "
                        "laid over another training background (default 0, as rounds 1-13)")
    p.add_argument("--rain-mix", type=_rain_mix, default=PRESET_PROBABILITIES,
                   metavar="L,M,H[,D]",
                   help="probabilities of light, medium, heavy and dense synthetic rain; "
                        "three values leave dense rain out (default "
                        f"{','.join(f'{p:g}' for p in PRESET_PROBABILITIES)}, as rounds 1-6)")
    p.add_argument("--augment", action="store_true",
                   help="vary every crop: downscale by up to 2x, flips (and 90-degree turns of "
                        "backgrounds that get synthetic rain), contrast 0.6-1.0, brightness "
                        "+-15 (off: position and a horizontal flip only, as rounds 1-10)")
    p.add_argument("--use-tum", action="store_true",
                   help="also train on the TUM frames (off: they stay unseen for evaluation)")
    p.add_argument("--data", type=Path, default=None, help="shared data folder")
    p.add_argument("--export", type=Path, default=None, metavar="WEIGHTS.safetensors",
                   help="write the best checkpoint's weights here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    root = args.data or default_data_root()
    config = TrainConfig(kind=args.kind, steps=args.steps, batch=args.batch, patch=args.patch,
                         lr=args.lr, seed=args.seed, device=args.device,
                         out=args.out or Path("checkpoints") / args.kind,
                         val_every=args.val_every, time_limit_s=args.time_limit,
                         validate_dry=args.val_dry, recall_weight=args.recall_weight,
                         keep_weight=args.keep_weight,
                         upsampled_octave=args.upsampled_octave)
    sampler = PatchSampler(load_training_images(root, use_tum=args.use_tum), args.patch,
                           real_fraction=args.real_fraction,
                           clean_fraction=args.clean_fraction,
                           transplant_fraction=args.transplant_fraction, rain_mix=args.rain_mix,
                           augmentation=Augmentation() if args.augment else None)
    val = validation_pairs(root, range(81, 81 + args.val_pairs)) if args.val_pairs else []
    trainer = Trainer(config, sampler, val)
    if args.resume:
        trainer.resume()
    elif args.init:
        trainer.initialize_from(args.init)
    if args.restart_selection:
        trainer.restart_selection()
    summary = trainer.fit()
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; loss "
          f"{summary['first_loss']:.4f} -> {summary['last_loss']:.4f}; best val score "
          f"{summary['best_score']:.4f}")
    if args.export:
        export_best(config, args.export, summary)
    return 0


def export_best(config: TrainConfig, target: Path, summary: dict) -> None:
    """Write the best checkpoint's weights as safetensors with provenance metadata."""
    best = config.out / "best.pt"
    state = torch.load(best if best.is_file() else config.out / "last.pt", map_location="cpu",
                       weights_only=False)
    net = build_net(ARCHITECTURE[config.kind], "lite", **config.net_overrides)
    net.load_state_dict(state["model"])
    metadata = {"kind": config.kind, "step": str(state["step"]),
                "val_score": f"{state['best_score']:.4f}", "steps_run": str(summary["steps"])}
    if state["config"].get("init_weights"):
        metadata["init_weights"] = Path(state["config"]["init_weights"]).name
    save_net(net, target, metadata=metadata)
    print(f"exported step {state['step']} (val score {state['best_score']:.4f}) -> {target}")
