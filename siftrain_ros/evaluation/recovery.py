"""Keypoint recovery metrics of a deraining method against the clean image's SIFT.

Protocol (docs/recovery.md, paper-notes "Evaluation protocol"): reference = SIFT(clean); a
keypoint of the method's output is *recovered* when a reference keypoint lies within 2 px with
a scale (size) ratio within 1.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..sift import Features, SiftConfig
from .contrast_sweep import above_contrast, detection_config
from .matching import ratio_matches

if TYPE_CHECKING:
    from ..frontend import FrontEndConfig

RADIUS_PX = 2.0
SCALE_RATIO = 1.5
MATCH_RADIUS_PX = 3.0
LOWE_RATIO = 0.8


@dataclass
class RecoveryMetrics:
    """Metrics of one image (or their mean over images).

    Attributes:
        keypoints: number of keypoints of the method.
        reference: number of keypoints of SIFT(clean).
        recall: share of reference keypoints with a method keypoint within 2 px and scale
            ratio <= 1.5 (bounded by 1 even where SIFT emits several orientations at one place).
        precision: share of method keypoints with such a reference keypoint.
        localisation_px: mean distance from each recovered method keypoint to its nearest
            compatible reference keypoint, pixels (nan when none is recovered).
        matching_accuracy: share of method keypoints whose Lowe-ratio (0.8) nearest descriptor
            in SIFT(clean) lies within 3 px of the keypoint.
    """

    keypoints: float
    reference: float
    recall: float
    precision: float
    localisation_px: float
    matching_accuracy: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def compatible_pairs(xy_a: np.ndarray, size_a: np.ndarray, xy_b: np.ndarray,
                     size_b: np.ndarray, radius: float = RADIUS_PX,
                     scale_ratio: float = SCALE_RATIO, chunk: int = 1024
                     ) -> tuple[np.ndarray, np.ndarray]:
    """For every point of A, the distance to its nearest *compatible* point of B.

    Compatible: within ``radius`` pixels and sizes within a factor ``scale_ratio``.

    Args:
        xy_a: (N, 2) pixels; size_a: (N,) keypoint diameters.
        xy_b: (M, 2) pixels; size_b: (M,) keypoint diameters.

    Returns:
        distance: (N,) pixels, inf where none is compatible; index: (N,) into B, -1 where none.
    """
    n = len(xy_a)
    distance = np.full(n, np.inf)
    index = np.full(n, -1, np.int64)
    if n == 0 or len(xy_b) == 0:
        return distance, index
    xy_b = np.asarray(xy_b, np.float64)
    log_b = np.log(np.maximum(np.asarray(size_b, np.float64), 1e-6))
    limit = np.log(scale_ratio) + 1e-9
    for start in range(0, n, chunk):
        block = np.asarray(xy_a[start: start + chunk], np.float64)
        d = np.sqrt(((block[:, None, :] - xy_b[None]) ** 2).sum(-1))
        log_a = np.log(np.maximum(np.asarray(size_a[start: start + chunk], np.float64), 1e-6))
        ok = (d <= radius) & (np.abs(log_a[:, None] - log_b[None]) <= limit)
        d = np.where(ok, d, np.inf)
        best = d.argmin(1)
        found = np.isfinite(d[np.arange(len(block)), best])
        distance[start: start + chunk] = np.where(found, d[np.arange(len(block)), best], np.inf)
        index[start: start + chunk] = np.where(found, best, -1)
    return distance, index


def matching_accuracy(method: Features, reference: Features, ratio: float = LOWE_RATIO,
                      radius: float = MATCH_RADIUS_PX) -> float:
    """Share of ``method`` keypoints whose ratio-test match in ``reference`` is within
    ``radius`` px of the keypoint's own position (0 when ``method`` is empty)."""
    if len(method) == 0:
        return 0.0
    index_m, index_r = ratio_matches(method.descriptors, reference.descriptors, ratio)
    if len(index_m) == 0:
        return 0.0
    error = np.linalg.norm(method.xy[index_m] - reference.xy[index_r], axis=1)
    return float((error <= radius).sum() / len(method))


def recovery_metrics(method: Features, reference: Features) -> RecoveryMetrics:
    """All metrics of one method's features against SIFT(clean) of the same image."""
    to_ref, _ = compatible_pairs(method.xy, method.size, reference.xy, reference.size)
    to_method, _ = compatible_pairs(reference.xy, reference.size, method.xy, method.size)
    recovered = np.isfinite(to_ref)
    return RecoveryMetrics(
        keypoints=float(len(method)), reference=float(len(reference)),
        recall=float(np.isfinite(to_method).mean()) if len(reference) else 0.0,
        precision=float(recovered.mean()) if len(method) else 0.0,
        localisation_px=float(to_ref[recovered].mean()) if recovered.any() else float("nan"),
        matching_accuracy=matching_accuracy(method, reference),
    )


def recovered_mask(method: Features, reference: Features) -> np.ndarray:
    """(M,) bool: which of the M ``reference`` keypoints ``method`` recovers (the recall rule:
    a method keypoint within 2 px with a scale ratio within 1.5)."""
    to_method, _ = compatible_pairs(reference.xy, reference.size, method.xy, method.size)
    return np.isfinite(to_method)


def recall_counts_by_octave(method: Features, reference: Features) -> dict[int, list[int]]:
    """Per octave of the *reference* keypoint: ``[recovered, total]`` reference keypoints.

    Splits :attr:`RecoveryMetrics.recall` by scale: octave -1 (OpenCV's upsampled base) holds
    the finest keypoints, most of a natural image's. Counts, so images pool exactly.
    """
    return octave_counts(recovered_mask(method, reference), reference)


def octave_counts(recovered: np.ndarray, reference: Features) -> dict[int, list[int]]:
    """:func:`recall_counts_by_octave` from a :func:`recovered_mask` already computed."""
    octave = reference.pyramid_octave()
    return {int(o): [int(recovered[octave == o].sum()), int((octave == o).sum())]
            for o in np.unique(octave)}


def overlap_counts(method: np.ndarray, rainy: np.ndarray) -> list[int]:
    """``[both, method only, rainy only, total]`` reference keypoints of one image, from two
    :func:`recovered_mask` results over the same reference. Counts, so images pool exactly."""
    return [int((method & rainy).sum()), int((method & ~rainy).sum()),
            int((~method & rainy).sum()), int(len(method))]


def pooled_overlap(counts: list[list[int]]) -> dict[str, float]:
    """Shares of all reference keypoints (pooled over images) that a method and SIFT on the
    rainy image recover: ``both``, ``method_only``, ``rainy_only`` and ``either``; plus the
    ``reference`` count. A large ``either`` against each one's own recall means the two find
    different clean keypoints."""
    both, method_only, rainy_only, total = (int(sum(c[i] for c in counts)) for i in range(4))
    share = (lambda n: n / total) if total else (lambda n: 0.0)
    return {"reference": float(total), "both": share(both), "method_only": share(method_only),
            "rainy_only": share(rainy_only), "either": share(both + method_only + rainy_only)}


def pooled_recall_by_octave(counts: list[dict[int, list[int]]]) -> dict[str, dict[str, float]]:
    """``{octave: {"reference": total, "recall": recovered / total}}`` over images (JSON keys
    are strings)."""
    pooled: dict[int, list[int]] = {}
    for image in counts:
        for octave, (hits, total) in image.items():
            pooled.setdefault(octave, [0, 0])
            pooled[octave][0] += hits
            pooled[octave][1] += total
    return {str(o): {"reference": float(total), "recall": hits / total if total else 0.0}
            for o, (hits, total) in sorted(pooled.items())}


def mean_metrics(per_image: list[RecoveryMetrics]) -> RecoveryMetrics:
    """Mean of each metric over images (nan-aware for localisation)."""
    if not per_image:
        return RecoveryMetrics(0, 0, 0, 0, float("nan"), 0)
    values = {k: [asdict(m)[k] for m in per_image] for k in asdict(per_image[0])}
    out = {}
    for key, column in values.items():
        finite = [v for v in column if np.isfinite(v)]
        out[key] = float(np.mean(finite)) if finite else float("nan")
    return RecoveryMetrics(**out)


# -- pairing rainy and clean files ----------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff")


def trailing_number(name: str) -> int | None:
    """The number a file stem ends with (``norain-12`` -> 12, ``input7`` -> 7), else None."""
    import re

    match = re.search(r"(\d+)$", Path(name).stem)
    return int(match.group(1)) if match else None


def image_files(directory: Path) -> list[Path]:
    """Image files of a folder, sorted by trailing number then name."""
    files = [p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: (trailing_number(p.name) is None,
                                        trailing_number(p.name) or 0, p.name))


def pair_files(rainy_dir: Path, clean_dir: Path, pairs_list: Path | None = None
               ) -> list[tuple[Path, Path]]:
    """Pair rainy and clean images.

    Rules, in order: a ``pairs_list`` file (lines ``RAINY CLEAN`` or a single name present in
    both folders; ``#`` comments); else identical file names (Rain100H: ``rain/norain-N.png`` ↔
    ``norain/norain-N.png``); else equal trailing numbers (sirr_pairs: ``inputK`` ↔
    ``norainK``). Unpaired files are ignored.

    Raises:
        FileNotFoundError: a folder or a listed file is missing.
        ValueError: nothing could be paired, or a trailing number is ambiguous.
    """
    for directory in (rainy_dir, clean_dir):
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such folder")
    if pairs_list is not None:
        pairs = []
        for line in pairs_list.read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            rainy, clean = rainy_dir / fields[0], clean_dir / fields[-1]
            for path in (rainy, clean):
                if not path.is_file():
                    raise FileNotFoundError(f"{path} (listed in {pairs_list}) not found")
            pairs.append((rainy, clean))
    else:
        rainy_files, clean_files = image_files(rainy_dir), image_files(clean_dir)
        clean_names = {p.name: p for p in clean_files}
        pairs = [(p, clean_names[p.name]) for p in rainy_files if p.name in clean_names]
        if not pairs:
            by_number: dict[int, Path] = {}
            for p in clean_files:
                number = trailing_number(p.name)
                if number is not None:
                    if number in by_number:
                        raise ValueError(f"ambiguous pairing: {by_number[number].name} and "
                                         f"{p.name} both end in {number}")
                    by_number[number] = p
            pairs = [(p, by_number[trailing_number(p.name)]) for p in rainy_files
                     if trailing_number(p.name) in by_number]
    if not pairs:
        raise ValueError(f"no rainy/clean pairs found in {rainy_dir} and {clean_dir}")
    return pairs


# -- running methods --------------------------------------------------------------------------
METHODS = ("rainy", "l1", "ours", "clean")


def method_extractors(methods: list[str], device: str = "cpu",
                      weights_dir: Path | None = None,
                      frontend: FrontEndConfig | None = None,
                      detection: SiftConfig | None = None) -> dict:
    """A callable ``(rainy, clean) -> Features | FrontEndResult`` per method name (None for
    "clean", whose features are the reference itself; ours and l1 return the front end's
    result, which also says how rainy the net found the image).

    rainy: SIFT on the rainy image; clean: SIFT on the clean image (upper bound); ours: the
    front end with the shipped DPRNet + GGIRNet; l1: the front end with the pixel-L1 ablation.
    ``frontend`` configures ours and l1 (default ``FrontEndConfig()``: no gates, so the
    networks' outputs are measured as they are). ``detection``, where given, replaces the SIFT
    parameters of rainy, ours and l1 (a contrast sweep detects once at its lowest threshold).

    Raises:
        ValueError: unknown method. MissingWeightsError: weights absent.
    """
    from ..frontend import FeatureFrontEnd, FrontEndConfig, TorchBackend, load_derain_nets
    from ..sift import Sift

    config = frontend or FrontEndConfig()
    if detection is not None:
        config = replace(config, sift=detection)
    sift = Sift(config.sift, device=device)
    extractors = {}
    for name in methods:
        if name == "rainy":
            extractors[name] = lambda rainy, clean: sift(rainy)
        elif name == "clean":
            extractors[name] = None  # the reference itself; see evaluate
        elif name in ("ours", "l1"):
            nets = load_derain_nets(name, "lite", weights_dir)
            front = FeatureFrontEnd(config, TorchBackend(*nets, device=device))
            extractors[name] = lambda rainy, clean, front=front: front(rainy)
        else:
            raise ValueError(f"unknown method {name!r}; expected some of {', '.join(METHODS)}")
    return extractors


def evaluate(images: list[tuple[str, np.ndarray, np.ndarray]], methods: list[str],
             device: str = "cpu", weights_dir: Path | None = None,
             progress: bool = False, frontend: FrontEndConfig | None = None,
             contrast_thresholds: Sequence[float] = ()) -> dict:
    """Run every method on every (name, rainy, clean) image and compute the metrics.

    Args:
        images: (name, rainy (H, W) uint8, clean (H, W) uint8) triples.
        methods: names from :data:`METHODS`.
        frontend: the front-end configuration of ours and l1 (default: no gates).
        contrast_thresholds: SIFT contrast thresholds (OpenCV units) to sweep rainy, l1 and
            ours over (:mod:`.contrast_sweep`); empty: none.

    Returns:
        ``{"methods": {name: mean metrics dict}, "per_image": {name: [metrics dict + "image"]},
        "gap_closed": {name: (recall_m - recall_rainy) / (recall_clean - recall_rainy)},
        "at_clean_budget": {"methods": ..., "gap_closed": ...}}``. The gap needs the rainy and
        clean methods among ``methods``. ``recall_by_octave`` pools the recall per octave of the
        clean keypoint over images (:func:`recall_counts_by_octave`). ``recovered_with_rainy``
        (with "rainy" among ``methods``) pools, per other method but clean, which clean
        keypoints it and rainy each recover (:func:`pooled_overlap`). ``at_clean_budget``
        repeats the means with each method's keypoints cut to the strongest N by response, N =
        the clean image's count: recall at an equal budget, which more keypoints alone cannot
        raise (rain adds hundreds of extrema, some of which land near clean keypoints by
        chance). Rows of ours and l1 also hold the image's ``rain_level`` and ``gated_dry``;
        their means add ``gated_dry_share``, the share of images the rain gate sent through
        plain SIFT. ``contrast_sweep`` (only with ``contrast_thresholds``) holds, per method
        but clean, one mean-metrics row per threshold, highest first, each with its
        ``contrast_threshold``.
    """
    from ..frontend import FrontEndConfig, FrontEndResult
    from ..sift import Sift

    main_config = (frontend or FrontEndConfig()).sift
    extractors = method_extractors(methods, device, weights_dir, frontend,
                                   detection_config(main_config, contrast_thresholds))
    threshold, layers = main_config.contrast_threshold, main_config.n_octave_layers
    swept = {m: {t: [] for t in sorted(set(contrast_thresholds), reverse=True)}
             for m in methods if m != "clean"}
    sift = Sift(device=device)
    per_image: dict[str, list[dict]] = {m: [] for m in methods}
    budgeted: dict[str, list[dict]] = {m: [] for m in methods}
    by_octave: dict[str, list[dict[int, list[int]]]] = {m: [] for m in methods}
    overlaps: dict[str, list[list[int]]] = (
        {m: [] for m in methods if m not in ("rainy", "clean")} if "rainy" in methods else {})
    iterator = images
    if progress:
        from tqdm import tqdm

        iterator = tqdm(images, desc="eval", dynamic_ncols=True)
    for name, rainy, clean in iterator:
        reference = sift(clean)
        recovered: dict[str, np.ndarray] = {}
        for method, extract in extractors.items():
            result = reference if extract is None else extract(rainy, clean)
            detected, gate = result, {}
            if isinstance(result, FrontEndResult):
                detected = result.features
                gate = {"rain_level": result.rain_level, "gated_dry": result.gated_dry}
            features = above_contrast(detected, threshold, layers)
            metrics = recovery_metrics(features, reference).as_dict()
            for t, rows in swept.get(method, {}).items():
                rows.append(metrics if t == threshold else recovery_metrics(
                    above_contrast(detected, t, layers), reference).as_dict())
            per_image[method].append({"image": name, **metrics, **gate})
            recovered[method] = recovered_mask(features, reference)
            by_octave[method].append(octave_counts(recovered[method], reference))
            at_budget = recovery_metrics(features.strongest(len(reference)), reference)
            budgeted[method].append({"image": name, **at_budget.as_dict(), **gate})
        for method, counts in overlaps.items():
            counts.append(overlap_counts(recovered[method], recovered["rainy"]))
    means, gap = _summary(per_image)
    budget_means, budget_gap = _summary(budgeted)
    out = {"methods": means, "per_image": per_image, "gap_closed": gap,
           "recall_by_octave": {m: pooled_recall_by_octave(c) for m, c in by_octave.items()},
           "recovered_with_rainy": {m: pooled_overlap(c) for m, c in overlaps.items()},
           "at_clean_budget": {"methods": budget_means, "gap_closed": budget_gap,
                               "per_image": budgeted}}
    if contrast_thresholds:
        out["contrast_sweep"] = {
            m: [{"contrast_threshold": t, **mean_metrics(
                [RecoveryMetrics(**r) for r in rows]).as_dict()} for t, rows in by_t.items()]
            for m, by_t in swept.items()}
    return out


def _summary(per_image: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Mean metrics per method (plus the gated share, where rows say) and the share of the
    rainy->clean recall gap each closes."""
    fields = RecoveryMetrics.__dataclass_fields__
    means = {m: mean_metrics([RecoveryMetrics(**{k: v for k, v in r.items() if k in fields})
                              for r in rows]).as_dict() for m, rows in per_image.items()}
    for m, rows in per_image.items():
        if rows and "gated_dry" in rows[0]:
            means[m]["gated_dry_share"] = float(np.mean([r["gated_dry"] for r in rows]))
    gap = {}
    if "rainy" in means and "clean" in means:
        span = means["clean"]["recall"] - means["rainy"]["recall"]
        for m in means:
            if m not in ("rainy", "clean") and span > 0:
                gap[m] = (means[m]["recall"] - means["rainy"]["recall"]) / span
    return means, gap
