"""Config validation: the schema stops a bad config before any job, naming the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from conftest import REPO, bin_path, copy_workflow
from ferflow.cli import parser_for
from ferflow.config import SCHEMA_PATH, STAGE_SETTINGS, default
from ferflow.errors import FerflowError
from ferflow.train.settings import DEFAULTS, defining_settings, expand_recipes, overlay, resolve_settings


def _dry_run(workdir: Path, *configfiles: Path) -> subprocess.CompletedProcess[str]:
    args = [bin_path("snakemake"), "-n", "--quiet", "rules", "--configfile", *map(str, configfiles)]
    return subprocess.run(args, cwd=workdir, text=True, capture_output=True)


SELF_TEACHER = {"teacher": "resnet/kd", "temperature": 1, "weight": 0.5}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("cfg"))


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"dataset": {"bogus_key": 1}}, "unknown config key dataset.bogus_key"),
        ({"train": {"lr": -1}}, "invalid config key train.lr"),
        ({"models": {"vgg16": {"options": {"pretraned": True}}}}, "unknown config key models.vgg16.options.pretraned"),
        ({"models": {"resnet": {"options": {"width": 2}}}}, "unknown config key models.resnet.options.width"),
        ({"augment": {"min_per_class": "many"}}, "invalid config key augment.min_per_class"),
        ({"models": {"resnet": {"sweep": {"x": {"optimizer": "rmsprop"}}}}}, "models.resnet.sweep.x.optimizer"),
        ({"affectnet": {"label_policy": "vote"}}, "affectnet.label_policy"),
        ({"colour": "red"}, "unknown config key colour"),
        ({"train": {"threads": 2.0}}, "invalid config key train.threads: 2.0 is not of type 'integer'"),
        ({"models": {"resnet": {"sweep": {"x": {"recipe": "nope"}}}}}, "models.resnet.sweep.x.recipe: 'nope' is no"),
        (
            {
                "models": {
                    "resnet": {
                        "sweep": {"kd": {"distillation": {"teacher": "alexnet/final", "temperature": 4, "weight": 0.5}}}
                    }
                }
            },
            "models.resnet.sweep.kd: distillation teacher alexnet/final: no model alexnet",
        ),
        (
            {
                "models": {
                    "resnet": {
                        "sweep": {"kd": {"distillation": {"teacher": "vgg16/final", "temperature": 4, "weight": 0.5}}}
                    }
                }
            },
            "distillation teacher vgg16/final: models.vgg16.final is null",
        ),
        (
            {"models": {"resnet": {"sweep": {"kd": {"distillation": {**SELF_TEACHER, "ensemble": True}}}}}},
            "models.resnet.sweep.kd: distillation teacher resnet/kd: the experiment itself",
        ),
    ],
)
def test_bad_config_stops_before_any_job(workdir: Path, overlay: dict, message: str) -> None:
    bad = workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    proc = _dry_run(workdir, bad)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


def test_schema_defaults_fill_a_minimal_config(workdir: Path, tmp_path: Path) -> None:
    """A config that names only the dataset and one model gets every other key from the schema."""
    from snakemake.utils import validate

    config = {"dataset": {"name": "x", "source": "synthetic"}, "models": {"resnet": {"sweep": {"a": {}}}}}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # the packaged schema, linked
    assert config["dataset"]["val_fraction"] == 0.1
    assert config["augment"]["min_per_class"] == 4500
    assert config["models"]["resnet"]["enabled"] is True
    assert config["figures"]["format"] == "png"

    assert config["train"] == DEFAULTS  # the pipeline's train defaults are ferflow train's: one table, the schema's


@pytest.mark.parametrize("command", sorted(STAGE_SETTINGS))
def test_command_settings_default_to_the_schemas(command: str) -> None:
    """A command's --settings left out are the schema's defaults of the config keys it reads: not a second literal."""
    subcommands = {"plot-data": ["tsne", "--coords", "c", "--out", "o"], "plot-study": ["params", "--out", "o", "m"]}
    subcommands["summarize-videos"] = ["--out", "o", "a.csv"]  # its CSVs are positional
    required = [a.option_strings[0] for a in parser_for(command)._actions if a.required and a.option_strings]
    argv = subcommands.get(command) or [part for option in required for part in (option, "x")]
    settings = parser_for(command).parse_args(argv).settings
    expected = {}
    for key in STAGE_SETTINGS[command]:
        node = yaml.safe_load(SCHEMA_PATH.read_text())
        for part in key.split("."):
            node = node["properties"][part]
        nested = {name: sub["default"] for name, sub in node.get("properties", {}).items()}  # dataset.synthetic
        expected[key.rpartition(".")[2]] = {**nested, **node["default"]} if nested else node["default"]
    assert settings == expected


def test_a_command_refuses_an_unknown_or_invalid_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo or a bad value is one line naming the setting and exits 2 before any work."""
    for given, message in [
        ('{"perplexty": 5}', "unknown setting perplexty of ferflow tsne-raw (allowed: pca_components"),
        ('{"max_iter": "many"}', "invalid setting max_iter of ferflow tsne-raw"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            parser_for("tsne-raw").parse_args(["--split", "s.npz", "--out", "o.csv", "--settings", given])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_settings_may_come_from_a_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("perplexity: 7\n")
    args = parser_for("embed").parse_args(
        ["--checkpoint", "c", "--data", "d", "--out", "o", "--settings", str(tmp_path / "t.yaml")]
    )
    assert args.settings["perplexity"] == 7 and args.settings["max_iter"] == default("tsne.max_iter")


@pytest.mark.parametrize(
    ("command", "option", "key"),
    [("evaluate", "tta", "evaluation.tta"), ("tsne-raw", "seed", "seed")],
)
def test_command_flags_default_to_the_schemas(command: str, option: str, key: str) -> None:
    """A flag that mirrors a config key takes its default from the schema."""
    assert parser_for(command).get_default(option) == default(key)


def test_training_settings_are_checked_by_the_schema() -> None:
    """ferflow train refuses what the Snakefile would refuse, naming the key; an experiment's partial
    augmentation keeps the other augmentation defaults."""
    settings = resolve_settings({"augmentation": {"rotation": 20}})
    assert settings["augmentation"] == {**DEFAULTS["augmentation"], "rotation": 20}
    for bad, message in [
        ({"optimizer": "rmsprop"}, "invalid training setting optimizer"),
        ({"augmentation": {"rotate": 1}}, "unknown training setting augmentation.rotate"),
        ({"distillation": {"teacher": "a/b"}}, "invalid training setting distillation"),
    ]:
        with pytest.raises(FerflowError, match=message):
            resolve_settings(bad)


OVERLAID_ON = {
    "long.yaml": ["fast.yaml"],
    "distill.yaml": ["fast.yaml", "long.yaml"],
    "ensemble.yaml": ["fast.yaml"],
    "general.yaml": ["fast.yaml"],
    "general-looks.yaml": ["fast.yaml", "general.yaml"],
}
"""Presets that start from another's recipe (their headers say so), with the presets they go over."""


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "workflow" / "presets").glob("*.yaml")))
def test_presets_validate(workdir: Path, preset: str) -> None:
    (workdir / "videos").mkdir(exist_ok=True)  # videos.yaml reads the user's folder videos/ (absent: one line)
    stack = [*OVERLAID_ON.get(preset, []), preset]
    proc = _dry_run(workdir, *(workdir / "workflow" / "presets" / name for name in stack))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_an_ensemble_teacher_is_every_seed_of_its_experiment_as_soft_labels_computed_once(
    workdir: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "ensemble.yaml"
    distillation = {"teacher": "resnet/final", "temperature": 2.0, "weight": 0.5, "ensemble": True}
    experiment = {"epochs": 1, "distillation": distillation}
    models = {"fernettiny": {"enabled": True, "sweep": {"kd": experiment}}}
    overlay.write_text(yaml.safe_dump({"seeds": [1, 2], "evaluation": {"tta": "crops10"}, "models": models}))
    targets = [f"results/tiny/runs/fernettiny/kd/seed{k}/history.csv" for k in (1, 2)]
    args = [bin_path("snakemake"), "-n", "-p", "--configfile", "workflow/presets/tiny.yaml", str(overlay), "--"]
    proc = subprocess.run([*args, *targets], cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    teachers = " ".join(f"results/tiny/runs/resnet/final/seed{k}/best.pt" for k in (1, 2))
    once = f"ferflow soft-labels {teachers} --data results/tiny/data/rgb/train.npz --tta crops10"
    assert proc.stdout.count(once) == 1
    assert proc.stdout.count("--soft-labels results/tiny/runs/resnet/final/soft_labels.npz") == 2  # both seeds
    assert "--teacher" not in proc.stdout and "rule deploy_seed:" not in proc.stdout


def test_a_distilled_search_gives_its_workers_the_teacher(workdir: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "search.yaml"
    distillation = {"teacher": "resnet/final", "temperature": 2.0, "weight": 0.5}
    search = {
        "trials": 2,
        "epochs": 1,
        "space": {"lr": {"log": [1e-3, 1e-1]}},
        "settings": {"distillation": distillation},
    }
    overlay.write_text(yaml.safe_dump({"models": {"fernettiny": {"enabled": True, "search": search}}}))
    target = "results/tiny/search/fernettiny/worker0.json"
    args = [bin_path("snakemake"), "-n", "-p", "--configfile", "workflow/presets/tiny.yaml", str(overlay), "--", target]
    proc = subprocess.run(args, cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ferflow search --model fernettiny" in proc.stdout
    assert "--teacher results/tiny/runs/resnet/final/best.pt --out" in proc.stdout


def test_a_distilled_experiment_takes_its_teachers_deployed_checkpoint_as_input(workdir: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "distil.yaml"
    recipe = {"epochs": 1, "distillation": {"teacher": "resnet/final", "temperature": 4.0, "weight": 0.5}}
    overlay.write_text(yaml.safe_dump({"models": {"fernettiny": {"enabled": True, "sweep": {"kd": recipe}}}}))
    target = "results/tiny/runs/fernettiny/kd/seed1/history.csv"
    args = [bin_path("snakemake"), "-n", "-p", "--configfile", "workflow/presets/tiny.yaml", str(overlay), "--", target]
    proc = subprocess.run(args, cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--teacher results/tiny/runs/resnet/final/best.pt" in proc.stdout
    assert "rule deploy_seed:" in proc.stdout  # the teacher's deployed seed is chosen first
    without = [
        bin_path("snakemake"),
        "-n",
        "-p",
        "--configfile",
        "workflow/presets/tiny.yaml",
        "--",
        "results/tiny/runs/resnet/final/seed1/history.csv",
    ]
    assert "--teacher" not in subprocess.run(without, cwd=workdir, text=True, capture_output=True).stdout


def preset_settings(*names: str) -> dict[tuple[str, str], dict]:
    """The defining settings of every final and sweep experiment of ``config.yaml`` under the presets ``names``
    (merged as Snakemake merges ``--configfile``s), keyed by (model, experiment)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for name in names:
        update_config(cfg, yaml.safe_load((REPO / "workflow" / "presets" / name).read_text()))
    expand_recipes(cfg)
    found = {}
    for model, spec in cfg["models"].items():
        for experiment, own in [("final", spec.get("final") or {}), *(spec.get("sweep") or {}).items()]:
            found[model, experiment] = defining_settings(overlay(cfg["train"], own))
    return found


def test_only_fast_yaml_s_own_final_resizes_progressively() -> None:
    """fast.yaml's fernetfast trains 50 epochs, the first 30 on 32-px views; the presets built on its recipe (the
    120-epoch runs, the distilled student, the seed-ensemble teacher and students) keep the full-size recipe they
    were measured with."""
    fast = preset_settings("fer2013-local.yaml", "fast.yaml")[("fernetfast", "final")]
    assert fast["low_res"] == {"side": 32, "fraction": 0.6} and fast["epochs"] == 50
    stacks = [("fast.yaml", "long.yaml"), ("fast.yaml", "long.yaml", "distill.yaml"), ("fast.yaml", "ensemble.yaml")]
    for stack in stacks:
        built = preset_settings("fer2013-local.yaml", *stack)
        assert not [key for key, settings in built.items() if "low_res" in settings], stack
    teacher = preset_settings("fer2013-local.yaml", "fast.yaml", "ensemble.yaml")[("fernetfast", "final")]
    assert teacher == {key: value for key, value in fast.items() if key != "low_res"} | {"epochs": 37}
