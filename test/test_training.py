"""Training loop: a tiny run learns, resume continues the same run, seeds make it repeatable,
and the CLI trains and exports weights the front end can load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open

from siftrain_ros.cli import main
from siftrain_ros.frontend.weights import MissingWeightsError, load_net, save_net
from siftrain_ros.nets import build_net
from siftrain_ros.rain import RainParams, add_rain
from siftrain_ros.training import PatchSampler, TrainConfig, Trainer, TrainingImages
from siftrain_ros.training.trainer import DRY_PREFIX, validation_score

PATCH = 32
TINY_NET = {"channels": (8, 8), "dilations": (1, 1)}


def smooth_image(seed: int, size: int = PATCH) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size, size)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def images(size: int = PATCH, count: int = 2) -> TrainingImages:
    clean = [smooth_image(i, size) for i in range(count)]
    pairs = [(add_rain(c, seed=i, params=RainParams.preset("heavy")), c)
             for i, c in enumerate(clean)]
    return TrainingImages(clean=clean, real_pairs=pairs)


def trainer(tmp_path: Path, kind: str = "l1", seed: int = 0, steps: int = 4, **kw) -> Trainer:
    config = TrainConfig(kind=kind, steps=steps, batch=2, patch=PATCH, lr=kw.pop("lr", 1e-3),
                         seed=seed, out=tmp_path, val_every=0, net_overrides=TINY_NET,
                         validate_dry=kw.pop("validate_dry", False),
                         recall_weight=kw.pop("recall_weight", 1.0),
                         keep_weight=kw.pop("keep_weight", 1.0),
                         upsampled_octave=kw.pop("upsampled_octave", False))
    sampler = PatchSampler(kw.pop("data", images()), PATCH, kw.pop("real_fraction", 0.3))
    return Trainer(config, sampler, kw.pop("val_pairs", []), log=lambda _: None)


def test_tiny_run_reduces_loss(tmp_path: Path) -> None:
    # One real pair the size of the patch: every batch is the same pair (up to flips), so
    # the loss must fall if the loop optimises at all.
    data = images(count=1)
    t = trainer(tmp_path, "l1", steps=25, lr=1e-2, data=data, real_fraction=1.0)
    summary = t.fit()
    assert summary["steps"] == 25
    assert summary["last_loss"] < 0.7 * summary["first_loss"]
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()


@pytest.mark.parametrize("kind", ["dprnet", "ggirnet"])
def test_scale_space_losses_train(tmp_path: Path, kind: str) -> None:
    t = trainer(tmp_path, kind, steps=2)
    terms = [t.train_step() for _ in range(2)]
    assert all(np.isfinite(v) for step in terms for v in step.values())
    assert t.step == 2


def test_recall_weight_reaches_the_dprnet_loss_and_is_refused_elsewhere(tmp_path: Path) -> None:
    assert trainer(tmp_path, "dprnet", recall_weight=3.0).loss.recall_weight == 3.0
    with pytest.raises(ValueError, match="dprnet loss only"):
        trainer(tmp_path, "l1", recall_weight=3.0)


def test_keep_weight_trains_dprnet_on_the_input_and_is_refused_elsewhere(tmp_path: Path) -> None:
    t = trainer(tmp_path, "dprnet", steps=1, keep_weight=4.0)
    assert t.loss.keep_weight == 4.0
    assert all(np.isfinite(v) for v in t.train_step().values())
    with pytest.raises(ValueError, match="dprnet loss only"):
        trainer(tmp_path, "ggirnet", keep_weight=4.0)


@pytest.mark.parametrize("kind", ["dprnet", "ggirnet"])
def test_upsampled_octave_reaches_the_scale_space_losses(tmp_path: Path, kind: str) -> None:
    t = trainer(tmp_path, kind, steps=1, upsampled_octave=True)
    assert t.loss.config.upsample
    assert all(np.isfinite(v) for v in t.train_step().values())


def state(t: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in t.net.state_dict().items()}


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    straight = trainer(tmp_path / "a")
    straight.fit()
    first = trainer(tmp_path / "b")
    first.train_step()
    first.train_step()
    first.save("last")
    resumed = trainer(tmp_path / "b")
    resumed.resume()
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 4
    for key, value in state(straight).items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (trainer(tmp_path / n, seed=s) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    for t in (a, b, c):
        t.fit()
    sa, sb, sc = state(a), state(b), state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_resume_refuses_other_kind(tmp_path: Path) -> None:
    trainer(tmp_path, "l1").save("last")
    with pytest.raises(ValueError, match="l1 checkpoint"):
        trainer(tmp_path, "dprnet").resume()


def test_cli_trains_and_exports_loadable_weights(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for sub in ("rain100h/norain", "rain100h/rain", "hpatches_v_churchill"):
        (data / sub).mkdir(parents=True)
    for n in (1, 2):
        pair = images(64, 1)
        cv2.imwrite(str(data / "rain100h/norain" / f"norain-{n}.png"), pair.clean[0])
        cv2.imwrite(str(data / "rain100h/rain" / f"norain-{n}.png"), pair.real_pairs[0][0])
    weights = tmp_path / "w" / "dprnet_lite.safetensors"
    code = main(["train", "dprnet", "--steps", "1", "--batch", "1", "--patch", "32",
                 "--clean-fraction", "0.5", "--val-dry", "--recall-weight", "2",
                 "--keep-weight", "3",
                 "--upsampled-octave", "--augment", "--val-pairs", "0", "--data", str(data),
                 "--out", str(tmp_path / "ckpt"), "--export", str(weights)])
    assert code == 0
    assert (tmp_path / "ckpt" / "summary.json").is_file()
    saved = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert saved["config"]["recall_weight"] == 2.0
    assert saved["config"]["keep_weight"] == 3.0
    assert saved["config"]["upsampled_octave"] is True
    net = load_net("dprnet", "lite", weights.parent)
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)
    # Fine-tune the export: the new export names the weights it started from.
    tuned = tmp_path / "w2" / "l1_lite.safetensors"
    assert main(["train", "l1", "--steps", "1", "--batch", "1", "--patch", "32",
                 "--val-pairs", "0", "--data", str(data), "--out", str(tmp_path / "ckpt2"),
                 "--init", str(weights), "--export", str(tuned)]) == 0
    with safe_open(str(tuned), "pt") as exported:
        assert exported.metadata()["init_weights"] == weights.name


def test_init_starts_a_fresh_run_from_saved_weights(tmp_path: Path) -> None:
    source = trainer(tmp_path / "a", seed=0)
    source.fit()
    weights = tmp_path / "w.safetensors"
    save_net(source.net, weights)
    tuned = trainer(tmp_path / "b", seed=1)  # another seed: another random initialisation
    tuned.initialize_from(weights)
    assert all(torch.equal(v, tuned.net.state_dict()[k]) for k, v in state(source).items())
    assert tuned.step == 0 and tuned.config.init_weights == str(weights)
    tuned.fit()
    assert tuned.step == 4
    assert not all(torch.equal(v, tuned.net.state_dict()[k]) for k, v in state(source).items())


def test_init_refuses_missing_or_misfitting_weights(tmp_path: Path) -> None:
    t = trainer(tmp_path, "l1")
    with pytest.raises(MissingWeightsError, match="not found"):
        t.initialize_from(tmp_path / "absent.safetensors")
    other = tmp_path / "other.safetensors"
    save_net(build_net("ggirnet", "lite", **TINY_NET), other)
    with pytest.raises(MissingWeightsError, match="does not fit"):
        t.initialize_from(other)
    t.train_step()
    with pytest.raises(ValueError, match="already at step 1"):
        t.initialize_from(other)


def test_cli_init_excludes_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "l1", "--resume", "--init", str(tmp_path / "w.safetensors")])
    assert "not allowed with argument" in capsys.readouterr().err


def _draws(sampler: PatchSampler, count: int = 40) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [sampler.sample_one(rng) for _ in range(count)]


def test_clean_fraction_mixes_dry_crops_in() -> None:
    data = images(count=2)
    dry = _draws(PatchSampler(data, PATCH, clean_fraction=1.0))
    assert all(np.array_equal(rainy, clean) for rainy, clean in dry)
    half = _draws(PatchSampler(data, PATCH, clean_fraction=0.5))
    identical = sum(np.array_equal(rainy, clean) for rainy, clean in half)
    assert 8 <= identical <= 32  # binomial(40, 0.5): outside this is ~1e-4 likely


def test_zero_clean_fraction_is_the_default_rain_only_sampler() -> None:
    data = images(count=2)
    default, explicit = _draws(PatchSampler(data, PATCH)), _draws(
        PatchSampler(data, PATCH, clean_fraction=0.0))
    assert not any(np.array_equal(rainy, clean) for rainy, clean in default)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(default, explicit, strict=True))


@pytest.mark.parametrize("fractions", [{"clean_fraction": 1.5}, {"real_fraction": -0.1}])
def test_sampler_rejects_fractions_outside_unit_interval(fractions: dict) -> None:
    with pytest.raises(ValueError, match="must be in"):
        PatchSampler(images(), PATCH, **fractions)


def test_dry_validation_scores_the_mean_of_rainy_and_dry(tmp_path: Path) -> None:
    data = images(size=96, count=1)
    t = trainer(tmp_path, "dprnet", validate_dry=True, val_pairs=data.real_pairs)
    metrics = t.validate()
    rain = {k: v for k, v in metrics.items() if not k.startswith(DRY_PREFIX)}
    dry = {k.removeprefix(DRY_PREFIX): v for k, v in metrics.items() if k.startswith(DRY_PREFIX)}
    assert set(rain) == set(dry) and rain != dry
    # The untrained lite net is near the identity (its tail starts at 1 % scale): on the dry
    # image it keeps the clean keypoints, on the rainy one it cannot.
    assert dry["recall"] > 0.9 and rain["recall"] < dry["recall"]
    assert validation_score("dprnet", metrics) == pytest.approx(
        0.5 * (validation_score("dprnet", rain) + validation_score("dprnet", dry)))


def test_restart_selection_forgets_the_old_best(tmp_path: Path) -> None:
    data = images(size=96, count=1)
    first = trainer(tmp_path, "l1", val_pairs=data.real_pairs)
    first.train_step()
    first.best_score = 99.0  # an unreachable score from "another objective"
    first.save("last")
    resumed = trainer(tmp_path, "l1", steps=2, val_pairs=data.real_pairs)
    resumed.resume()
    resumed.restart_selection()
    resumed.fit()
    validated = [record["step"] for record in resumed.history]
    assert validated[-2:] == [1, 2]  # the resumed weights are a candidate too
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["best_score"] < 99.0 and best["step"] in (1, 2)


def test_rain_mix_picks_the_synthetic_preset() -> None:
    # Synthetic rain only (no real pairs, no dry crops): with the mix all on one preset, the
    # streak energy must follow that preset.
    data = images(size=96, count=2)
    energy = {}
    for preset, mix in (("light", (1.0, 0.0, 0.0)), ("heavy", (0.0, 0.0, 1.0))):
        draws = _draws(PatchSampler(data, PATCH, real_fraction=0.0, rain_mix=mix), 20)
        energy[preset] = np.mean([np.abs(r.astype(float) - c).mean() for r, c in draws])
    assert energy["heavy"] > 2 * energy["light"]


def test_a_three_preset_mix_replays_the_older_data_stream() -> None:
    # Rounds 1-15 wrote --rain-mix with three presets; adding dense rain must not change what
    # those runs draw, or their recorded results could not be reproduced.
    data = images(size=96, count=2)
    older = _draws(PatchSampler(data, PATCH, real_fraction=0.0, rain_mix=(0.2, 0.4, 0.4)), 12)
    padded = _draws(PatchSampler(data, PATCH, real_fraction=0.0,
                                 rain_mix=(0.2, 0.4, 0.4, 0.0)), 12)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(older, padded, strict=True))


def test_dense_rain_is_drawn_when_the_mix_asks_for_it() -> None:
    data = images(size=96, count=2)
    dense = _draws(PatchSampler(data, PATCH, real_fraction=0.0, rain_mix=(0, 0, 0, 1.0)), 8)
    light = _draws(PatchSampler(data, PATCH, real_fraction=0.0, rain_mix=(1.0, 0, 0, 0)), 8)
    assert not any(np.array_equal(a[0], b[0]) for a, b in zip(dense, light, strict=True))
    assert all(not np.array_equal(rainy, clean) for rainy, clean in dense)


@pytest.mark.parametrize("mix", [(0.5, 0.5), (0.5, 0.6, -0.1), (0.2, 0.2, 0.2),
                                 (0.2, 0.2, 0.2, 0.2, 0.2)])
def test_sampler_rejects_a_rain_mix_that_is_not_a_distribution(mix: tuple) -> None:
    with pytest.raises(ValueError, match="rain_mix"):
        PatchSampler(images(), PATCH, rain_mix=mix)


def test_train_cli_rejects_a_bad_rain_mix(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "l1", "--rain-mix", "0.5,0.5"])
    assert "summing to 1" in capsys.readouterr().err
