"""The training loop: Adam with cosine decay, resumable checkpoints, SIFT-metric validation.

Checkpoints (``<out>/last.pt``, ``<out>/best.pt``) hold the model, the optimizer, the step, the
numpy/torch random states and the validation history, so ``--resume`` continues the very same
run. The best checkpoint is chosen by a SIFT metric on validation pairs, never by PSNR.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..device import resolve_device
from ..evaluation.recovery import mean_metrics, recovery_metrics
from ..frontend.weights import load_weights_into
from ..losses import make_loss
from ..nets import DerainNet, build_net
from ..sift import Features, Sift
from .data import PatchSampler

# The ablation uses DPRNet's architecture (as frontend.weights loads it).
ARCHITECTURE = {"dprnet": "dprnet", "ggirnet": "ggirnet", "l1": "dprnet"}


@dataclass
class TrainConfig:
    """Attributes:
        kind: "dprnet", "ggirnet" or "l1" (the loss; l1 uses DPRNet's architecture).
        steps: optimisation steps in total (a resumed run continues up to this).
        batch: patches per step.
        patch: patch side, pixels.
        lr: peak Adam learning rate; cosine decay to 10 % of it over ``steps``.
        seed: seeds the network initialisation and every data choice.
        device: "cpu" or "cuda[:N]".
        out: checkpoint directory.
        val_every: validate every K steps (and at the end); 0 only at the end.
        time_limit_s: stop early (cleanly, with a checkpoint) after this much wall time; 0: none.
        net_overrides: :class:`NetConfig` fields to replace (tests use tiny nets).
        grad_clip: max global gradient norm.
        validate_dry: also validate on the validation pairs' clean images as input and choose
            the best checkpoint by the mean of the rainy and the dry score: a net that "derains"
            a dry image must leave its keypoints where they are.
        recall_weight: dprnet only: weight of the clean keypoints in the interest point loss
            (see :func:`~siftrain_ros.losses.interest_point_loss`); 1 as rounds 1-4.
        keep_weight: dprnet only: weight of the clean keypoints that the rainy input already
            has, in the interest point loss (see
            :func:`~siftrain_ros.losses.interest_point_loss`); 1 as rounds 1-12.
        upsampled_octave: dprnet and ggirnet: build the loss pyramids with OpenCV's 2x
            upsampled octave -1, where most keypoints are detected (off as rounds 1-7).
        init_weights: a safetensors file (e.g. the shipped weights) to start a fresh run
            from instead of a random initialisation: fine-tuning, with a new optimizer and
            step 0. Kept here only as provenance; :meth:`Trainer.initialize_from` loads it.
    """

    kind: str
    steps: int = 1000
    batch: int = 8
    patch: int = 64
    lr: float = 5e-4
    seed: int = 0
    device: str = "cpu"
    out: Path = Path("checkpoints")
    val_every: int = 100
    time_limit_s: float = 0.0
    net_overrides: dict[str, Any] = field(default_factory=dict)
    grad_clip: float = 1.0
    validate_dry: bool = False
    recall_weight: float = 1.0
    keep_weight: float = 1.0
    upsampled_octave: bool = False
    init_weights: str | None = None


DRY_PREFIX = "dry_"


def validation_score(kind: str, metrics: dict[str, float]) -> float:
    """The number the best checkpoint is chosen by.

    Detection nets (dprnet, l1): F1 of recall and precision of the clean keypoints. Recall
    alone rewards leaving the rain in: rain adds thousands of extrema, some of which land
    within 2 px of a clean keypoint by chance (on the first dprnet run, recall ranked the
    untrained near-identity net first while it had half the precision of trained ones).
    Description net (ggirnet): matching accuracy, the share of its keypoints whose descriptor
    finds the right clean keypoint. Where ``metrics`` also holds the dry validation
    (``dry_*`` keys, the clean images as input), the score is the mean of the two.
    """
    dry = {k.removeprefix(DRY_PREFIX): v for k, v in metrics.items() if k.startswith(DRY_PREFIX)}
    if dry:
        rain = {k: v for k, v in metrics.items() if not k.startswith(DRY_PREFIX)}
        return 0.5 * (validation_score(kind, rain) + validation_score(kind, dry))
    if kind == "ggirnet":
        return metrics["matching_accuracy"]
    recall, precision = metrics["recall"], metrics["precision"]
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


class Trainer:
    """Trains one network.

    Args:
        config: run settings.
        sampler: training batches.
        val_pairs: (rainy, clean) (H, W) uint8 validation images (may be empty).
        log: where one-line messages go.
    """

    def __init__(self, config: TrainConfig, sampler: PatchSampler,
                 val_pairs: list[tuple[np.ndarray, np.ndarray]],
                 log: Callable[[str], None] = print):
        if config.kind not in ARCHITECTURE:
            raise ValueError(f"kind must be one of {sorted(ARCHITECTURE)}, got {config.kind!r}")
        if config.steps < 1 or config.batch < 1:
            raise ValueError("steps and batch must be >= 1")
        self.config, self.sampler, self.log = config, sampler, log
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.net: DerainNet = build_net(ARCHITECTURE[config.kind], "lite",
                                        **config.net_overrides).to(self.device)
        self.loss = make_loss(config.kind, config.recall_weight, config.upsampled_octave,
                              config.keep_weight)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(config.seed)
        self.step = 0
        self.best_score = -math.inf
        self.history: list[dict[str, Any]] = []
        self.sift = Sift()
        self.val_pairs = val_pairs
        self._val_reference: list[Features] = [self.sift(clean) for _, clean in val_pairs]

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in dataclasses.asdict(self.config).items()},
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "step": self.step, "best_score": self.best_score, "history": self.history,
            "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        }

    def save(self, name: str) -> Path:
        """Write ``<out>/<name>.pt`` atomically."""
        self.config.out.mkdir(parents=True, exist_ok=True)
        path = self.config.out / f"{name}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def resume(self, path: Path | None = None) -> None:
        """Load ``path`` (default ``<out>/last.pt``) and continue from its step."""
        path = path or self.config.out / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume at {path}")
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config"]["kind"] != self.config.kind:
            raise ValueError(f"{path} is a {state['config']['kind']} checkpoint, "
                             f"not {self.config.kind}")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.best_score = state["step"], state["best_score"]
        self.history = state["history"]
        # A fine-tuned run stays marked as such across resumes (export provenance).
        self.config.init_weights = state["config"].get("init_weights")
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.log(f"resumed {path} at step {self.step}")

    def initialize_from(self, path: Path) -> None:
        """Start this fresh run from the network weights in ``path`` (safetensors).

        Only the weights are taken: optimizer, step and random states stay those of a new
        run, so the learning-rate schedule starts over (fine-tuning the shipped weights on
        new data or with a new loss). To continue an interrupted run, use :meth:`resume`.

        Raises:
            MissingWeightsError: the file is missing, unreadable or does not fit the net.
            ValueError: the run has already taken steps.
        """
        if self.step:
            raise ValueError(f"initialize_from on a run already at step {self.step}")
        load_weights_into(self.net, path, f"lite {ARCHITECTURE[self.config.kind]}")
        self.config.init_weights = str(path)
        self.log(f"initialised {self.config.kind} from {path}")

    def restart_selection(self) -> None:
        """Forget the best score so far; :meth:`fit` then validates the current weights first.

        For a resumed run whose objective or selection rule changed (new data mix,
        ``validate_dry``): earlier checkpoints were chosen for another goal, and their score
        may not even be comparable.
        """
        self.best_score = -math.inf

    # -- training ----------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        """Cosine decay from ``lr`` to ``0.1 lr`` over the configured steps."""
        progress = min(step / self.config.steps, 1.0)
        return self.config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def train_step(self) -> dict[str, float]:
        """One optimisation step on a fresh batch; returns the loss terms."""
        rainy, clean = self.sampler.sample(self.rng, self.config.batch)
        rainy, clean = rainy.to(self.device), clean.to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.net.train()
        # Only the keep weight needs the input; the other losses take (output, clean).
        inputs = (rainy,) if self.config.keep_weight > 1.0 else ()
        terms = self.loss(self.net(rainy), clean, *inputs)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def _metrics_on(self, inputs: list[np.ndarray]) -> dict[str, float]:
        self.net.eval()
        per_image = []
        for image, reference in zip(inputs, self._val_reference, strict=True):
            x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None].to(self.device)
            out = (self.net(x).clamp(0, 1) * 255.0)[0, 0].cpu().numpy()
            per_image.append(recovery_metrics(self.sift(out), reference))
        return mean_metrics(per_image).as_dict()

    def validate(self) -> dict[str, float]:
        """SIFT metrics of the network's output on the validation pairs (mean over pairs);
        with ``validate_dry`` also on their clean images as input (keys ``dry_*``)."""
        metrics = self._metrics_on([rainy for rainy, _ in self.val_pairs])
        if self.config.validate_dry:
            dry = self._metrics_on([clean for _, clean in self.val_pairs])
            metrics |= {DRY_PREFIX + k: v for k, v in dry.items()}
        return metrics

    def _validate_and_keep(self, loss: float) -> dict[str, Any]:
        # Without validation pairs every checkpoint scores 0, so "best" is the first one.
        metrics = self.validate() if self.val_pairs else {"recall": 0.0, "precision": 0.0,
                                                          "matching_accuracy": 0.0}
        score = validation_score(self.config.kind, metrics)
        record = {"step": self.step, "loss": loss, "score": score, **metrics}
        self.history.append(record)
        if score > self.best_score:
            self.best_score = score
            self.save("best")
        self.save("last")
        self.log(f"step {self.step}: loss {loss:.4f}, val score {score:.4f} "
                 f"(best {self.best_score:.4f}) " +
                 ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        return record

    def fit(self) -> dict[str, Any]:
        """Train up to ``steps`` (or the time limit); returns a summary."""
        cfg = self.config
        start = time.perf_counter()
        running: list[float] = []
        first_losses: list[float] = []
        # No candidate scored yet (a fresh run, or a restarted selection): the starting
        # weights are the first one.
        if self.best_score == -math.inf and self.val_pairs:
            self._validate_and_keep(float("nan"))
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.kind}",
                   dynamic_ncols=True, mininterval=5.0)
        stopped_early = False
        while self.step < cfg.steps:
            terms = self.train_step()
            running.append(terms["total"])
            if len(first_losses) < 20:
                first_losses.append(terms["total"])
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}")
            timed_out = cfg.time_limit_s > 0 and time.perf_counter() - start > cfg.time_limit_s
            if (cfg.val_every and self.step % cfg.val_every == 0) or timed_out \
                    or self.step == cfg.steps:
                self._validate_and_keep(float(np.mean(running[-cfg.val_every or -20:])))
            if timed_out:
                stopped_early = self.step < cfg.steps
                break
        bar.close()
        return {"steps": self.step, "seconds": time.perf_counter() - start,
                "stopped_early": stopped_early, "best_score": self.best_score,
                "first_loss": float(np.mean(first_losses)) if first_losses else float("nan"),
                "last_loss": float(np.mean(running[-20:])) if running else float("nan"),
                "history": self.history}
