"""Training options beyond the study (all off by default): losses, mixing, erasing, zoom, schedules, EMA,
distillation; and the compact FerNet architectures."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from batch_regularisers import mix, random_erasing
from ferflow import checkpoint, cli, models, synthetic
from ferflow.errors import FerflowError
from ferflow.faces import to_model_input
from ferflow.inference import predict_probabilities
from ferflow.storage import load_split, save_stage
from ferflow.train import soft_labels as ensemble_soft_labels
from ferflow.train.engine import affine_matrices, lr_factor
from ferflow.train.losses import Criterion, balanced_class_weights, distillation_loss
from ferflow.train.mixing import beta_sample
from ferflow.train.settings import resolve_settings
from interrupt import kill_after_first_epoch
from training import train_args

BASE = {"epochs": 2, "batch_size": 32, "max_train_batches": 3, "threads": 2, "amp": False}
RECIPE = {
    "optimizer": "sgd",
    "nesterov": True,
    "lr": 0.05,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "label_smoothing": 0.1,
    "mixup": 0.2,
    "cutmix": 1.0,
    "random_erasing": 0.5,
    "ema": 0.9,
    "class_weights": "balanced",
    "loss": "focal",
    "augmentation": {"rotation": 10, "shear": 0, "translate": 0.1, "zoom": 0.1},
}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits = synthetic.generate(n_train=160, n_test=96, seed=3)
    test = splits["test"]
    out = tmp_path_factory.mktemp("stage")
    save_stage(
        out, {"train": splits["train"], "val": test.subset(np.arange(48)), "test": test.subset(np.arange(48, 96))}
    )
    return out


def recipe_args(
    stage: Path,
    out: Path,
    settings: dict[str, Any],
    model: str = "fernettiny",
    seed: int = 0,
    extra: tuple[str, ...] = (),
) -> list[str]:
    return train_args(stage, out, {**BASE, **settings}, model=model, seed=seed, extra=extra)


def train(
    stage: Path,
    out: Path,
    settings: dict[str, Any],
    model: str = "fernettiny",
    seed: int = 0,
    extra: tuple[str, ...] = (),
) -> list[dict[str, str]]:
    assert cli.main(recipe_args(stage, out, settings, model, seed, extra)) == 0
    with open(out / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_default_criterion_is_cross_entropy_and_each_option_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, 7, generator=g), torch.randint(0, 7, (16,), generator=g)
    one_hot = F.one_hot(y, 7).float()
    assert torch.allclose(Criterion()(logits, one_hot), F.cross_entropy(logits, y))
    assert torch.allclose(
        Criterion(label_smoothing=0.1)(logits, one_hot), F.cross_entropy(logits, y, label_smoothing=0.1)
    )
    weights = torch.rand(7, generator=g) + 0.5
    assert torch.allclose(Criterion(class_weights=weights)(logits, one_hot), F.cross_entropy(logits, y, weight=weights))
    assert torch.allclose(Criterion(focal_gamma=0.0)(logits, one_hot), F.cross_entropy(logits, y))
    p_true = F.softmax(logits, 1)[torch.arange(16), y]
    focal = (-((1 - p_true) ** 2) * p_true.log()).mean()
    assert torch.allclose(Criterion(focal_gamma=2.0)(logits, one_hot), focal)


def test_balanced_weights_are_inverse_frequencies() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = balanced_class_weights(labels, 4)
    assert torch.allclose(weights, torch.tensor([10 / 24, 10 / 12, 10 / 4, 0.0]))


def test_distillation_term_is_zero_for_the_teacher_itself_and_a_scaled_kl_otherwise() -> None:
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(8, 7, generator=g), torch.randn(8, 7, generator=g)
    assert float(distillation_loss(teacher, teacher, 4.0)) == pytest.approx(0.0, abs=1e-6)
    p = F.softmax(teacher / 4, 1)
    manual = (p * (p.log() - F.log_softmax(student / 4, 1))).sum(1).mean() * 16
    assert torch.allclose(distillation_loss(student, teacher, 4.0), manual)


def test_beta_draws_have_the_beta_mean_and_variance() -> None:
    g = torch.Generator().manual_seed(2)
    draws = np.array([beta_sample(0.4, g) for _ in range(4000)])
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean() == pytest.approx(0.5, abs=0.02)
    assert draws.var() == pytest.approx(0.25 / (2 * 0.4 + 1), rel=0.08)  # Var Beta(a, a) = 1 / (4 (2a + 1))


def test_cutmix_pastes_a_box_and_mixes_targets_by_its_area() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.arange(8, dtype=torch.float32)[:, None, None, None].expand(8, 1, 12, 12).clone()
    targets = F.one_hot(torch.arange(8) % 7, 7).float()
    mixed, mixed_targets = mix(x, targets, mixup=0.0, cutmix=1.0, generator=g)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(8))
    for i in range(8):
        kept = float((mixed[i] == i).float().mean())
        own = float(mixed_targets[i] @ targets[i])
        if kept < 1:  # the pasted partner is another image: the label share equals the pixel share
            assert own == pytest.approx(kept, abs=1e-6)


def test_mixup_is_a_convex_combination_of_two_images() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 1, 8, 8)
    targets = F.one_hot(torch.arange(6), 7).float()
    mixed, mixed_targets = mix(x, targets, mixup=0.4, cutmix=0.0, generator=g)
    for i in range(6):
        j = int(torch.argmax(mixed_targets[i] - mixed_targets[i][i] * targets[i])) if mixed_targets[i][i] < 1 else i
        lam = float(mixed_targets[i][i]) if j != i else 1.0
        assert torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5)
    assert mix(x, targets, 0.0, 0.0, g)[0] is x


def test_random_erasing_blanks_one_rectangle_per_chosen_image() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.ones(20, 1, 48, 48)
    erased = random_erasing(x, 1.0, g)
    for image in erased[:, 0]:
        rows, cols = torch.nonzero(image == 0, as_tuple=True)
        area = len(rows) / 48**2
        assert 0.01 <= area <= 0.26
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one full rectangle
    assert torch.equal(random_erasing(x, 0.0, g), x)


def test_zoom_scales_the_affine_map_within_its_range() -> None:
    g = torch.Generator().manual_seed(6)
    only_zoom = {"horizontal_flip": False, "rotation": 0, "shear": 0, "translate": 0, "zoom": 0.2}
    theta = affine_matrices(500, only_zoom, g)
    scale = 1 / theta[:, 0, 0]  # theta is the inverse map: 1 / s on the diagonal
    assert torch.allclose(theta[:, 0, 0], theta[:, 1, 1]) and float(theta[:, 0, 1].abs().max()) == 0
    assert 0.8 <= float(scale.min()) < 0.85 and 1.15 < float(scale.max()) <= 1.2
    assert affine_matrices(4, {**only_zoom, "zoom": 0}, g) is None


def test_warmup_then_cosine_learning_rate_factor() -> None:
    assert [lr_factor(s, 4, 20, cosine=False) for s in (0, 1, 3, 10)] == [0.25, 0.5, 1.0, 1.0]
    assert lr_factor(4, 4, 20, cosine=True) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20, cosine=True) == pytest.approx(0.5)
    assert lr_factor(20, 4, 20, cosine=True) == pytest.approx(0.0, abs=1e-12)


def test_recipe_settings_are_validated() -> None:
    assert resolve_settings({})["schedule"] == "constant" and resolve_settings({})["ema"] is None
    with pytest.raises(FerflowError, match="optimizer"):
        resolve_settings({"optimizer": "lamb"})
    with pytest.raises(FerflowError, match="schedule and plateau"):
        resolve_settings({"schedule": "cosine", "plateau": {"factor": 0.5, "patience": 1}})
    with pytest.raises(FerflowError, match="distillation"):
        resolve_settings({"distillation": {"temperature": 4}})


def test_full_recipe_trains_follows_its_schedule_and_resumes_exactly(stage: Path, tmp_path: Path) -> None:
    settings = {**RECIPE, "epochs": 3}
    history = train(stage, tmp_path / "full", settings)
    lrs = [float(row["lr"]) for row in history]
    steps = BASE["max_train_batches"]
    assert lrs[0] == pytest.approx(0.05 / steps)  # warmup: the lr of the first step
    assert lrs[1] == pytest.approx(0.05 * lr_factor(steps, steps, 3 * steps, True))
    assert lrs[2] < lrs[1]
    assert all(math.isfinite(float(row["train_loss"])) for row in history)

    out = tmp_path / "killed"
    args = recipe_args(stage, out, settings)
    kill_after_first_epoch(args, out)
    assert 1 <= checkpoint.read(out / "last.pt")["epoch"] < 3
    resumed = train(stage, out, settings)  # the restarted job: EMA, schedule and RNG states restored
    assert [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in resumed] == [
        {k: v for k, v in r.items() if k != "epoch_seconds"} for r in history
    ]
    for key, value in checkpoint.read(tmp_path / "full" / "best.pt")["model"].items():
        assert torch.equal(checkpoint.read(out / "best.pt")["model"][key], value), key


def test_ema_weights_are_what_is_validated_and_saved(stage: Path, tmp_path: Path) -> None:
    train(stage, tmp_path / "ema", {"ema": 0.5, "epochs": 1})
    best = checkpoint.read(tmp_path / "ema" / "best.pt")
    last = checkpoint.read(tmp_path / "ema" / "last.pt")
    ema_weights = {k[len("module.") :]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert best["model"].keys() == ema_weights.keys()
    for key in best["model"]:
        assert torch.equal(best["model"][key], ema_weights[key]), key
    differs = any(not torch.equal(last["model"][k], ema_weights[k]) for k in ema_weights if k.endswith("weight"))
    assert differs  # the average lags the raw weights
    # the average's batch norms hold the statistics of the (unaugmented) training images, recomputed for its
    # own weights: the first BN's running mean is the mean of the first convolution's outputs
    model = models.build(best["arch"], **best["arch_kwargs"])
    model.load_state_dict(best["model"])
    with torch.no_grad():
        conv = model.blocks[0](to_model_input(load_split(stage / "train.npz").images, 1))
    assert torch.allclose(model.blocks[1].running_mean, conv.mean(dim=(0, 2, 3)), atol=1e-5)


def test_distillation_takes_a_teacher_checkpoint_of_another_architecture(
    stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(stage, tmp_path / "teacher", {"epochs": 1}, model="resnet")
    teacher = tmp_path / "teacher" / "best.pt"
    distil = {"distillation": {"teacher": "resnet/exp", "temperature": 4.0, "weight": 0.9}, "epochs": 1}
    history = train(stage, tmp_path / "student", distil, extra=("--teacher", str(teacher)))
    assert len(history) == 1 and math.isfinite(float(history[0]["train_loss"]))
    assert checkpoint.read(tmp_path / "student" / "last.pt")["fingerprint"]["teacher"]
    assert cli.main(recipe_args(stage, tmp_path / "orphan", distil)) == 1
    assert "--teacher" in capsys.readouterr().err
    assert not (tmp_path / "orphan" / "best.pt").exists()


@pytest.fixture(scope="module")
def soft_labels(stage: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Soft labels of ``stage``'s training images from a seed ensemble of two one-epoch teachers."""
    out = tmp_path_factory.mktemp("ensemble")
    teachers = []
    for seed in (0, 1):
        train(stage, out / f"seed{seed}", {"epochs": 1}, seed=seed)
        teachers.append(out / f"seed{seed}" / "best.pt")
    args = ["soft-labels", *map(str, teachers), "--data", str(stage / "train.npz"), "--tta", "crops10"]
    assert cli.main([*args, "--out", str(out / "soft_labels.npz")]) == 0
    return out / "soft_labels.npz", teachers


def test_soft_labels_are_the_mean_of_each_seed_s_crop_averaged_probabilities(
    stage: Path, soft_labels: tuple[Path, list[Path]]
) -> None:
    path, teachers = soft_labels
    split = load_split(stage / "train.npz")
    per_seed = []
    for teacher in teachers:
        model, ckpt = checkpoint.load_model(teacher)
        per_seed.append(predict_probabilities(model.eval(), ckpt, split.images, 64, "crops10"))
    assert not np.allclose(per_seed[0], per_seed[1], atol=1e-3)  # two seeds, two teachers
    got = ensemble_soft_labels.load(path, split)
    np.testing.assert_allclose(got, np.mean(per_seed, axis=0), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_a_student_distils_from_soft_labels_of_its_own_training_images_only(
    stage: Path, soft_labels: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = soft_labels[0]
    distil = {"distillation": {"teacher": "fernettiny/exp", "temperature": 2.0, "weight": 0.7, "ensemble": True}}
    history = train(stage, tmp_path / "student", {**distil, "epochs": 1}, extra=("--soft-labels", str(path)))
    assert len(history) == 1 and math.isfinite(float(history[0]["train_loss"]))
    assert checkpoint.read(tmp_path / "student" / "last.pt")["fingerprint"]["teacher"]

    assert cli.main(recipe_args(stage, tmp_path / "orphan", distil)) == 1
    assert "--soft-labels" in capsys.readouterr().err
    other = tmp_path / "other"
    splits = {name: load_split(stage / f"{name}.npz") for name in ("train", "val", "test")}
    save_stage(other, {**splits, "train": splits["train"].subset(np.arange(100))})
    assert cli.main(recipe_args(other, tmp_path / "mismatch", distil, extra=("--soft-labels", str(path)))) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "other training images" in err
    assert not (tmp_path / "mismatch" / "best.pt").exists()


def test_the_soft_labels_of_a_batch_are_its_distillation_targets() -> None:
    from ferflow.train.engine import make_engine

    torch.manual_seed(0)
    settings = resolve_settings(
        {"amp": False, "distillation": {"teacher": "m/e", "temperature": 2.0, "weight": 0.7, "ensemble": True}}
    )
    engine, _ = make_engine(models.build("fernettiny", in_channels=1), settings, torch.device("cpu"))
    x, y = torch.randn(8, 1, 48, 48), torch.arange(8) % 7
    soft = F.softmax(torch.randn(8, 7), dim=1)
    loss, logits = engine.step(x, y, soft)
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * distillation_loss(logits, soft.log(), 2.0)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) != pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-3)
    with pytest.raises(FerflowError, match="--teacher"):  # an ensemble has soft labels, not a teacher model
        make_engine(models.build("fernettiny", in_channels=1), settings, torch.device("cpu"), teacher=engine.model)


def test_the_engine_s_teacher_folds_batch_norm_and_keeps_the_teacher_s_logits() -> None:
    from ferflow.train.engine import make_engine

    torch.manual_seed(0)
    teacher = models.build("fernetfast", in_channels=3).eval()
    for module in teacher.modules():  # non-trivial statistics, so that folding them is tested
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        expected = teacher(x)
    distil = {"distillation": {"teacher": "fernetfast/final", "temperature": 4.0, "weight": 0.5}}
    student = models.build("fernetfasttiny", in_channels=1)
    engine, _ = make_engine(student, resolve_settings(distil), torch.device("cpu"), teacher=teacher)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in engine.teacher.modules())
    assert not any(p.requires_grad for p in engine.teacher.parameters())
    with torch.no_grad():
        got = engine.teacher(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name, limit", [("fernet", 500_000), ("fernettiny", 100_000), ("fernetfast", 500_000), ("fernetfasttiny", 100_000)]
)
def test_fernets_are_compact_and_input_size_independent(name: str, limit: int) -> None:
    torch.manual_seed(0)
    model = models.build(name, in_channels=1).eval()
    assert models.count_parameters(model) < limit
    for size in (48, 64, 40):
        assert model(torch.randn(2, 1, size, size)).shape == (2, 7)
    assert (model.features(torch.randn(4, 1, 48, 48)) >= 0).all()
    classifier = model.classifier[-1]
    assert float(classifier.bias.abs().max()) == 0 and float(classifier.weight.std()) < 0.02  # N(0, 0.01)


def test_models_listing_counts_the_multiply_accumulates_of_each_layer(capsys: pytest.CaptureFixture[str]) -> None:
    from ferflow.models.listing import multiply_accumulates

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 48 * 48, 7)
    )
    assert multiply_accumulates(model, 1) == 48 * 48 * 4 * 9 + 4 * 48 * 48 * 7
    assert cli.main(["models", "--in-channels", "1"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == set(models.names())
    assert int(lines["fernettiny"][1].replace(",", "")) < 100_000 < int(lines["fernet"][1].replace(",", "")) < 500_000
    assert 0 < float(lines["fernettiny"][3]) < float(lines["fernet"][3])
    assert float(lines["fernetfast"][3]) < float(lines["fernet"][3]) / 2
    assert float(lines["fernetfasttiny"][3]) < float(lines["fernettiny"][3]) / 2


@pytest.mark.parametrize("fast_name, full_name", [("fernetfast", "fernet"), ("fernetfasttiny", "fernettiny")])
def test_fernet_fast_strides_its_stem_and_has_no_squeeze_excite(fast_name: str, full_name: str) -> None:
    from ferflow.models.fernet import SqueezeExcite

    fast, full = (models.build(name, in_channels=1) for name in (fast_name, full_name))
    assert not any(isinstance(m, SqueezeExcite) for m in fast.modules())
    assert sum(isinstance(m, SqueezeExcite) for m in full.modules()) == 4
    x = torch.randn(1, 1, 48, 48)
    assert fast.blocks[:3](x).shape[-2:] == (24, 24) and full.blocks[:3](x).shape[-2:] == (48, 48)
