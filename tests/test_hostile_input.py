"""A hostile user's input (issue 36): nothing a user types destroys a file, hangs the tool or passes a NaN. One
table of (command line, expected fragment of the one error line); every case must exit non-zero and leave the
fixture folder as it was: no file added, changed or removed, a device, a FIFO or an input never replaced."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import copy_workflow
from ferflow import EmotionRecognizer, checkpoint
from ferflow.cli import MAX_SEED, main
from ferflow.config import schema
from ferflow.ort import INPUT
from ferflow.storage import Split, check_outputs, save_split
from ferflow.synthetic import generate
from test_bad_input import onnx_model
from test_config import _dry_run

N = 16
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)  # 9⁹ values in nine lines


def video_csv(path: Path, rows: list[list[object]]) -> Path:
    """A CSV as ``ferflow predict <video> --csv`` writes it, of ``rows`` (time_s, frame, face_id, then 7 classes)."""
    header = ["time_s", "frame", "face_id", "x", "y", "w", "h", "emotion", *CLASSES]
    lines = [",".join(header)]
    lines += [",".join(map(str, [t, f, i, 0, 0, 10, 10, "happy", *p])) for t, f, i, *p in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = [0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good and hostile inputs, named as the table uses them."""
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (N, 48, 48), dtype=np.uint8)
    split = Split(gray, np.arange(N) % 7, [f"i{i}" for i in range(N)])
    save_split(d / "ok.npz", split)
    (d / "data").mkdir()
    save_split(d / "data" / "train.npz", split)
    save_split(d / "data" / "val.npz", split)
    checkpoint.save_untrained(d / "tiny.pt", "fernettiny", in_channels=1, num_classes=7)
    ckpt = checkpoint.read(d / "tiny.pt")
    nan = {k: v.clone() for k, v in ckpt["model"].items()}
    first = next(k for k, v in nan.items() if v.is_floating_point())
    nan[first].fill_(float("nan"))
    checkpoint.save(d / "nan.pt", {**ckpt, "model": nan})
    checkpoint.save(d / "size0.pt", {**ckpt, "image_size": 0})
    checkpoint.save(d / "huge.pt", {**ckpt, "image_size": 100_000})
    checkpoint.save(d / "wide.pt", {**ckpt, "arch_kwargs": {**ckpt["arch_kwargs"], "num_classes": 10**9}})
    onnx_model(d / "linear.onnx", INPUT, ["batch", 1, 48, 48])  # arch 'linear', with ferflow's metadata
    plain = d / "plain.onnx"
    onnx_model(plain, INPUT, ["batch", 1, 48, 48])
    import onnx

    model = onnx.load(str(plain))
    del model.metadata_props[:]
    onnx.save_model(model, str(plain))
    model.metadata_props.add(key="ferflow_image_size", value="1000000")
    for prop in onnx.load(str(d / "linear.onnx")).metadata_props:
        if prop.key != "ferflow_image_size":
            model.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save_model(model, str(d / "huge.onnx"))
    os.mkfifo(d / "fifo")
    os.mkfifo(d / "fifo.npz")
    os.symlink("/dev/null", d / "null.json")
    (d / "bomb.yaml").write_text(BOMB)
    (d / "twice.yaml").write_text("smoothing: ema\nsmoothing: mode\n")
    (d / "nan.yaml").write_text("ema_alpha: .nan\n")
    (d / "deep.json").write_text("[" * 20_000 + "]" * 20_000)
    video_csv(d / "v.csv", [[0.0, 0, 0, *GOOD], [0.2, 1, 0, *GOOD]])
    for name, row in {
        "abc": [0.0, 0, 0, "abc", *GOOD[1:]],
        "faceid": [0.0, 0, "x", *GOOD],
        "nanp": [0.0, 0, 0, "nan", *GOOD[1:]],
        "frac": [0.0, 0, 1.7, *GOOD],
        "blank": ["", 0, 0, *GOOD],
        "neg": [0.0, 0, 0, -5, *GOOD[1:]],
        "big": [0.0, 0, 0, 99, *GOOD[1:]],
    }.items():
        video_csv(d / f"{name}.csv", [row])
    (d / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00garbage\xff" * 20)
    with zipfile.ZipFile(d / "escape.zip", "w") as zf:
        zf.writestr("../evil.png", b"x")
        zf.writestr("train/happy/a.png", b"x")
    return d


def snapshot(d: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``d``: (mode, size, mtime_ns), symlinks not followed."""
    found = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            st = os.lstat(Path(root) / name)
            found[str(Path(root, name).relative_to(d))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


Q = "--calibration {d}/ok.npz --data {d}/ok.npz --out {d}/q.onnx --check-out {d}/q.json"
T1 = '{{"threads":1,"latency_min_seconds":0,"latency_repeats":1,"latency_batch_sizes":[1]}}'
CASES = [
    # 1. outputs never destroy inputs or special files
    (
        "export-onnx --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/m.onnx --check-out {d}/m.onnx",
        "m.onnx: given as two outputs",
    ),
    (
        "export-onnx --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/tiny.pt --check-out {d}/c.json",
        "tiny.pt: the output is the input",
    ),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --predictions {d}/ok.npz", "ok.npz: the output is the input"),
    (
        "evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/null.json",
        "null.json: exists and is a character device",
    ),
    (
        "evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/fifo",
        "fifo: exists and is a FIFO, not a regular file",
    ),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --confusion {d}/data", "data: exists and is a folder"),
    ("summarize-videos {d}/v.csv --out {d}/v.csv", "v.csv: the output is the input"),
    ("soft-labels {d}/tiny.pt --data {d}/ok.npz --out {d}/tiny.pt", "tiny.pt: the output is the input"),
    (
        "latency --checkpoint {d}/tiny.pt --onnx {d}/linear.onnx --out {d}/linear.onnx",
        "linear.onnx: the output is the input",
    ),
    ("search-best --workers {d}/v.csv --out {d}/v.csv", "v.csv: the output is the input"),
    ("tsne-raw --split {d}/ok.npz --out {d}/ok.npz", "ok.npz: the output is the input"),
    ("embed --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/tiny.pt", "tiny.pt: the output is the input"),
    # 2. nothing hangs: a FIFO or a device is never opened, sizes read from a file are bounded
    ("evaluate --checkpoint {d}/fifo --data {d}/ok.npz", "fifo: unreadable (a FIFO, not a regular file)"),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/fifo.npz", "fifo.npz: unreadable (a FIFO, not a regular file)"),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/fifo", "fifo: unreadable (a FIFO, not a regular file)"),
    ("summarize-videos {d}/v.csv --out {d}/o.csv --settings {d}/fifo", "fifo: unreadable (a FIFO, not a regular file)"),
    ("summarize-videos {d}/v.csv --out {d}/o.csv --settings /dev/zero", "/dev/zero: unreadable (a character device"),
    ("summarize-videos {d}/fifo --out {d}/o.csv", "fifo: unreadable (a FIFO, not a regular file)"),
    ("summarize-videos {d}/v.csv --out {d}/o.csv --settings {d}/bomb.yaml", "bomb.yaml: more than 100,000 values"),
    (
        "evaluate --checkpoint {d}/huge.pt --data {d}/ok.npz",
        "huge.pt: image_size 100000 is not an integer from 8 to 512",
    ),
    ("evaluate --checkpoint {d}/wide.pt --data {d}/ok.npz", "make 53,000,094,676 parameters, its weights hold 95,899"),
    (
        f"quantize --onnx {{d}}/huge.onnx {Q}",
        "huge.onnx: image_size 1000000 is not an integer from 8 to 512",
    ),
    # 3. no NaN or infinity passes
    ("evaluate --checkpoint {d}/nan.pt --data {d}/ok.npz", "nan.pt: non-finite weights (NaN or infinity) in "),
    (
        "export-onnx --checkpoint {d}/nan.pt --data {d}/ok.npz --out {d}/m.onnx --check-out {d}/c.json",
        "nan.pt: non-finite weights",
    ),
    ("soft-labels {d}/nan.pt --data {d}/ok.npz --out {d}/s.npz", "nan.pt: non-finite weights"),
    (
        "export-onnx --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/m.onnx --check-out {d}/c.json --atol nan",
        "argument --atol: must be a finite number, got 'nan'",
    ),
    ('summarize-videos {d}/v.csv --out {d}/o.csv --settings {{"ema_alpha":NaN}}', "NaN is not a number JSON allows"),
    (
        'summarize-videos {d}/v.csv --out {d}/o.csv --settings {{"ema_alpha":1e400}}',
        "ema_alpha of ferflow summarize-videos: inf is not of type 'number'",
    ),
    (
        "summarize-videos {d}/v.csv --out {d}/o.csv --settings {d}/nan.yaml",
        "ema_alpha of ferflow summarize-videos: nan is not",
    ),
    (
        'summarize-videos {d}/v.csv --out {d}/o.csv --settings {{"mode_window":3,"mode_window":5}}',
        "key 'mode_window' given twice",
    ),
    (
        "summarize-videos {d}/v.csv --out {d}/o.csv --settings {d}/twice.yaml",
        "twice.yaml: not valid YAML (key 'smoothing' given twice, line 2)",
    ),
    # 4. one line instead of a traceback
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/ok.npz/m.json", "ok.npz: not a folder, so "),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --out {d}/" + "x" * 300 + ".json", "File name too long"),
    ("evaluate --checkpoint {d}/size0.pt --data {d}/ok.npz", "size0.pt: image_size 0 is not an integer from 8 to 512"),
    (
        "search --model fernettiny --data-dir {d}/data --trials-dir {d}/t --storage bogus://x --out {d}/w.json "
        '--search {{"trials":1,"space":{{"lr":{{"log":[0.001,0.1]}}}}}}',
        "bogus://x: not a storage Optuna can open",
    ),
    (
        "search --model fernettiny --data-dir {d}/data --trials-dir {d}/t --storage sqlite:///{d}/s.db "
        "--out {d}/w.json "
        '--search {{"trials":1,"space":{{"lr":{{"log":[0.1,0.001]}}}}}}',
        "search space: lr log [0.1, 0.001] runs high to low",
    ),
    ("download --source synthetic --seed -1 --out {d}/stage", f"argument --seed: must be from 0 to {MAX_SEED}, got -1"),
    (
        f'quantize --onnx {{d}}/linear.onnx {Q} --settings {{{{"threads":99999999999}}}}',
        "invalid setting threads of ferflow quantize: 99999999999 is greater than the maximum of 4096",
    ),
    ("summarize-videos {d}/v.csv --out {d}/o.csv --settings {d}/deep.json", "deep.json: nested too deeply"),
    (
        "summarize-videos {d}/v.csv --out {d}/o.csv --settings "
        + "{{"
        + '"ema_alpha":'
        + "[" * 20_000
        + "]" * 20_000
        + "}}",
        "nested too deeply",
    ),
    ("summarize-videos {d}/abc.csv --out {d}/o.csv", "abc.csv: angry 'abc' on row 2, expected a number from 0 to 1"),
    ("summarize-videos {d}/faceid.csv --out {d}/o.csv", "faceid.csv: face_id 'x' on row 2, expected a whole number"),
    ("summarize-videos {d}/binary.csv --out {d}/o.csv", "binary.csv: unreadable video CSV"),
    ("summarize-videos {d}/nanp.csv --out {d}/o.csv", "nanp.csv: angry 'nan' on row 2, expected a number from 0 to 1"),
    ("summarize-videos {d}/frac.csv --out {d}/o.csv", "frac.csv: face_id '1.7' on row 2, expected a whole number"),
    ("summarize-videos {d}/blank.csv --out {d}/o.csv", "blank.csv: time_s '' on row 2, expected a number from 0"),
    ("summarize-videos {d}/neg.csv --out {d}/o.csv", "neg.csv: angry '-5' on row 2, expected a number from 0 to 1"),
    ("summarize-videos {d}/big.csv --out {d}/o.csv", "big.csv: angry '99' on row 2, expected a number from 0 to 1"),
    # 5. silently wrong no more
    (
        f"quantize --onnx {{d}}/plain.onnx {Q}",
        "plain.onnx: not an ONNX model of 'ferflow export-onnx' (ferflow metadata missing)",
    ),
    (
        f"latency --checkpoint {{d}}/tiny.pt --onnx {{d}}/linear.onnx --out {{d}}/l.json --settings {T1}",
        "linear.onnx: an export of 'linear', not of the checkpoint's 'fernettiny'",
    ),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --split PrivateTest", "ok.npz: a split file holds one split"),
    (
        "download --source {d}/escape.zip --cache-dir {d}/cache --out {d}/stage",
        "escape.zip: member '../evil.png' would land outside",
    ),
]


def run_cli(argv: list[str]) -> int:
    """``ferflow`` in-process; an argparse refusal (SystemExit) counts as its exit status."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(("command", "fragment"), CASES, ids=[c[1][:50] for c in CASES])
def test_hostile_input_is_one_line_a_non_zero_exit_and_leaves_every_file_as_it_was(
    hostile: Path, command: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(hostile)
    code = run_cli([a.format(d=hostile) for a in command.split(" ")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err and fragment in err[-1], err[-3:]
    assert snapshot(hostile) == before


def test_json_settings_are_parsed_as_json(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``5e-1`` is a number in JSON (YAML 1.1 reads it as a string)."""
    out = hostile / "out" / "summary.csv"
    argv = ["summarize-videos", str(hostile / "v.csv"), "--out", str(out), "--settings", '{"ema_alpha": 5e-1}']
    assert run_cli(argv) == 0, capsys.readouterr().err
    assert out.is_file()


def test_outputs_that_would_destroy_are_refused(tmp_path: Path) -> None:
    """The helper every command calls: inputs through symlinks and hard links, folders containing inputs."""
    from ferflow.errors import FerflowError

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"frames")
    (tmp_path / "link.csv").symlink_to(video)
    os.link(video, tmp_path / "hard.csv")
    (tmp_path / "dev").symlink_to("/dev/null")
    photos = tmp_path / "photos"
    photos.mkdir()
    for out, inputs, folder, fragment in [
        (video, [video], False, "clip.mp4: the output is the input"),
        (tmp_path / "link.csv", [video], False, "link.csv: the output is the input"),
        (tmp_path / "hard.csv", [video], False, "hard.csv: the output is the input"),
        (tmp_path / "dev", [], False, "dev: exists and is a character device, not a regular file"),
        (photos, [photos], True, "photos: the output is the input"),
        (tmp_path, [photos], True, ": the output contains the input"),
        (video, [], True, "clip.mp4: exists and is a regular file, not a folder"),
    ]:
        with pytest.raises(FerflowError, match="^" + ".*" + fragment.replace("(", r"\(").replace(")", r"\)")):
            check_outputs([out], inputs, folder=folder)
    check_outputs([tmp_path / "new.csv", photos / "sub"], [video, photos])  # neither is an input


def test_the_seed_bound_is_the_schemas() -> None:
    assert schema()["$defs"]["seed"]["maximum"] == MAX_SEED


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("hostile-cfg"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset: {val_fraction: .nan}\n", "invalid config key dataset.val_fraction: nan is not of type 'number'"),
        ("train: {lr: .inf}\n", "invalid config key train.lr: inf is not of type 'number'"),
        (f"seed: {10**23}\n", "invalid config key seed: 100000000000000000000000 is greater than the maximum"),
        ("dataset: {name: " + "n" * 300 + "}\n", "invalid config key dataset.name: 'nnn"),
        ("seed: 1\nseed: 2\n", "key 'seed' given twice, line 2"),
        (BOMB, "more than 100,000 values (a YAML alias bomb?)"),
        ("models: {resnet: {search: {trials: 1, space: {lr: {log: [0.1, 0.001]}}}}}\n", "runs high to low"),
    ],
)
def test_a_bad_config_stops_before_any_job(workdir: Path, text: str, message: str) -> None:
    bad = workdir / "bad.yaml"
    bad.write_text(text)
    proc = _dry_run(workdir, workdir / "workflow" / "presets" / "tiny.yaml", bad)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout, (proc.stderr + proc.stdout)[-2000:]
    assert not (workdir / "results").exists()


def test_a_synthetic_zip_with_safe_members_still_downloads(tmp_path: Path) -> None:
    """The zip check refuses only escaping members (the in-place reading of a zip is unchanged)."""
    data = generate(70, 14, 0)
    zip_path = tmp_path / "faces.zip"
    from PIL import Image

    with zipfile.ZipFile(zip_path, "w") as zf:
        for split, part in (("train", data["train"]), ("test", data["test"])):
            for i, (image, label) in enumerate(zip(part.images, part.labels)):
                Image.fromarray(image).save(tmp_path / "f.png")
                zf.write(tmp_path / "f.png", f"{split}/{CLASSES[label]}/{i}.png")
    argv = ["download", "--source", str(zip_path), "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "s")]
    assert run_cli(argv) == 0
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["test"]


def test_nan_weights_are_refused_by_the_api_too(hostile: Path) -> None:
    from ferflow.errors import FerflowError

    with pytest.raises(FerflowError, match="non-finite weights"):
        checkpoint.load_model(hostile / "nan.pt")
    assert checkpoint.load_model(hostile / "tiny.pt")[1]["image_size"] == 48


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        (PermissionError(13, "Permission denied", "/x/o.csv"), "/x/o.csv: Permission denied"),
        (OSError(28, "No space left on device"), "error: No space left on device"),
        (IsADirectoryError(21, "Is a directory", "/x/o.csv"), "/x/o.csv: Is a directory"),
    ],
)
def test_an_os_error_is_one_line_and_leaves_no_output(
    hostile: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: OSError, fragment: str
) -> None:
    """Root passes every permission check, and no test fills a disk: the error is raised where the output is
    written."""
    import pandas as pd

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    before = snapshot(hostile)
    assert run_cli(["summarize-videos", str(hostile / "v.csv"), "--out", str(hostile / "o.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert snapshot(hostile) == before


def test_crops10_fits_a_model_trained_on_whole_faces(ckpt: Path, hostile: Path, capsys: pytest.CaptureFixture) -> None:
    """The pipeline's ResNet (a dense head on 48-px maps) takes the ten crops resized back to 48 px (its
    42-px crops crashed: mat1 and mat2 shapes cannot be multiplied)."""
    argv = ["evaluate", "--checkpoint", str(ckpt), "--data", str(hostile / "ok.npz"), "--tta", "crops10"]
    assert run_cli(argv) == 0, capsys.readouterr().err


def test_a_video_takes_the_fewest_views_its_card_measures_within_half_a_point_of_the_best() -> None:
    """The shipped model: ten crops for photos (the best on its card), flip for videos and cameras (0.37 points
    below, with a fifth of the forward passes); the checkpoint's accuracies are the card's."""
    from ferflow.inference import resolve_tta

    shipped = checkpoint.read(checkpoint.SHIPPED)
    assert resolve_tta("auto", shipped) == "crops10"
    assert resolve_tta("auto", shipped, video=True) == "flip"
    assert resolve_tta("crops10", shipped, video=True) == "crops10"  # asked for, taken
    assert resolve_tta("auto", {"tta": "crops10"}, video=True) == "crops10"  # nothing measured: the recommendation
    card = checkpoint.SHIPPED.with_name("MODEL_CARD.md").read_text()
    for tta, accuracy in shipped["tta_accuracy"].items():
        assert re.search(rf"`--tta {tta}`[^|]*\|\s*{accuracy:.2f} %", card), tta


# 6. predict: photos, videos, cameras and the Python API


@pytest.fixture(scope="module")
def media(hostile: Path) -> Path:
    """A short clip, a folder of photos and a text file named like a photo, in the hostile folder."""
    from ferflow.predict.scenes import drawn_face, face_photo, moving_face_clip

    face = np.repeat(drawn_face(150)[..., None], 3, axis=2)
    moving_face_clip(hostile / "clip.mp4", face, frames=3)
    (hostile / "photos").mkdir()
    face_photo(hostile / "photos" / "a.jpg")
    (hostile / "text.jpg").write_text("not an image\n")
    return hostile


PREDICT = "predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --csv {d}/c.csv --plot {d}/c.png"
PREDICT_CASES = [
    ("predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --csv {d}/clip.mp4", "clip.mp4: the output is the input"),
    ("predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --annotate {d}/clip.mp4", "clip.mp4: the output is the input"),
    (
        "predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --csv {d}/null.json",
        "null.json: exists and is a character device",
    ),
    ("predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --csv {d}/fifo", "fifo: exists and is a FIFO"),
    ("predict {d}/clip.mp4 --checkpoint {d}/tiny.pt --csv {d}/c.png --plot {d}/c.png", "c.png: given as two outputs"),
    ("predict {d}/photos --checkpoint {d}/tiny.pt --annotate {d}/photos", "photos: the output is the input"),
    ("predict {d}/photos --checkpoint {d}/tiny.pt --annotate {d}", ": the output contains the input"),
    (
        "predict {d}/photos/a.jpg --checkpoint {d}/tiny.pt --annotate {d}/photos",
        "photos: the output contains the input",
    ),
    (PREDICT + " --plot {d}/ok.npz/p.png", "ok.npz: not a folder"),
    (PREDICT + " --fps inf", "fps must be a finite number > 0, got inf"),
    (PREDICT + " --fps nan", "fps must be a finite number > 0, got nan"),
    ("predict --camera -1 --checkpoint {d}/tiny.pt", "--camera must be a camera index >= 0, got -1"),
    (PREDICT + " --margin 1e6", "margin must be a number from 0 to 1.0, got 1000000.0"),
    (PREDICT + " --margin 30", "margin must be a number from 0 to 1.0, got 30.0"),
    (PREDICT + " --detect-side 1", "detect_side must be an integer >= 80, got 1"),
    ("predict {d}/photos --checkpoint {d}/fifo", "fifo: unreadable (a FIFO, not a regular file)"),
    ("predict {d}/photos --checkpoint {d}/nan.pt", "nan.pt: non-finite weights"),
    ("predict {d}/photos --checkpoint {d}/huge.onnx", "huge.onnx: image_size 1000000 is not an integer from 8 to 512"),
    ("predict {d}/photos --checkpoint {d}/tiny.pt --batch-size 2.5", "argument --batch-size: invalid int value: '2.5'"),
    ("predict {d}/photos --checkpoint {d}/tiny.pt --threads 1.5", "argument --threads: invalid int value: '1.5'"),
]


@pytest.mark.parametrize(("command", "fragment"), PREDICT_CASES, ids=[c[1][:50] for c in PREDICT_CASES])
def test_predict_refuses_in_one_line_and_leaves_every_file_as_it_was(
    media: Path, command: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    test_hostile_input_is_one_line_a_non_zero_exit_and_leaves_every_file_as_it_was(media, command, fragment, capsys)


API_CASES = [
    # (what the API is given, fragment of the FerflowError)
    (lambda d, r: EmotionRecognizer(""), "checkpoint '': "),
    (lambda d, r: EmotionRecognizer(d / "fifo"), "fifo: unreadable (a FIFO"),
    (lambda d, r: EmotionRecognizer(d / "tiny.pt", batch_size=2.5), "batch_size must be an integer >= 1, got 2.5"),
    (lambda d, r: EmotionRecognizer(d / "tiny.pt", threads=1.5), "threads must be an integer >= 1, got 1.5"),
    (lambda d, r: EmotionRecognizer(d / "tiny.pt", min_face=True), "min_face must be an integer >= 1, got True"),
    (lambda d, r: EmotionRecognizer(d / "tiny.pt", margin=1e6), "margin must be a number from 0 to 1.0, got 1000000.0"),
    (
        lambda d, r: EmotionRecognizer(d / "tiny.pt", margin=float("nan")),
        "margin must be a number from 0 to 1.0, got nan",
    ),
    (lambda d, r: r.predict(np.zeros((0, 0), np.uint8)), "an empty image (0×0 pixels)"),
    (lambda d, r: r.predict_faces([np.zeros((0, 5), np.uint8)]), "an empty image (5×0 pixels)"),
    (lambda d, r: r.predict_faces(str(d / "photos" / "a.jpg")), "predict_faces takes a list of face crops"),
    (lambda d, r: r.predict(Image.fromarray(np.full((48, 48), np.nan, np.float32))), "NaN or infinite pixels"),
    (lambda d, r: r.predict(np.zeros((9, 9, 3), np.uint8), channels="bgx"), "channels 'bgx': give 'rgb' or 'bgr'"),
    (lambda d, r: r.video(d / "clip.mp4", fps="5"), "fps must be a finite number > 0, got '5'"),
    (lambda d, r: r.video(d / "clip.mp4", fps=float("inf")), "fps must be a finite number > 0, got inf"),
    (lambda d, r: r.video(d / "clip.mp4", fps=float("nan")), "fps must be a finite number > 0, got nan"),
    (lambda d, r: r.video(d / "clip.mp4", every=1.5), "every must be an integer >= 1, got 1.5"),
    (lambda d, r: r.video(d / "clip.mp4", max_frames=2.5), "max_frames must be an integer >= 1, got 2.5"),
    (lambda d, r: r.video(d / "text.jpg"), "text.jpg: no frame could be read"),
]


@pytest.mark.parametrize(("call", "fragment"), API_CASES, ids=[c[1][:50] for c in API_CASES])
def test_the_api_refuses_in_one_line(media: Path, call, fragment: str) -> None:
    from ferflow.errors import FerflowError

    recognizer = EmotionRecognizer(media / "tiny.pt")
    before = snapshot(media)
    with pytest.raises(FerflowError) as info:
        call(media, recognizer)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert snapshot(media) == before


def test_a_bgr_frame_gives_the_faces_of_its_rgb_copy_and_of_the_video_path(media: Path) -> None:
    """``channels="bgr"`` takes OpenCV's frames as the video path does (read as RGB, the frame is another image)."""
    import cv2

    recognizer = EmotionRecognizer(media / "tiny.pt")
    capture = cv2.VideoCapture(str(media / "clip.mp4"))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    faces = recognizer.predict(bgr, channels="bgr")
    assert len(faces) == 1 and faces == recognizer.predict(np.ascontiguousarray(bgr[..., ::-1]))
    assert faces != recognizer.predict(bgr)
    assert recognizer.predict_faces([bgr], channels="bgr") == recognizer.predict_faces([bgr[..., ::-1].copy()])
    row = recognizer.video(media / "clip.mp4", max_frames=1, detect_side=640).iloc[0]  # the whole frame searched
    assert tuple(int(row[k]) for k in "xywh") == faces[0].box
    probabilities = [faces[0].probabilities[c] for c in recognizer.classes]
    assert np.allclose(row[recognizer.classes].to_numpy(float), probabilities, atol=2e-3)  # OpenCV's gray, ±1 level


def test_video_defaults_to_the_views_its_card_measures_close_to_the_best_and_says_so(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = EmotionRecognizer()
    assert (shipped.predictor.tta, shipped.predictor.video_tta) == ("crops10", "flip")
    out = ["--csv", str(tmp_path / "c.csv"), "--plot", str(tmp_path / "c.png")]
    assert run_cli(["predict", str(media / "clip.mp4"), "--max-frames", "1", *out]) == 0
    err = capsys.readouterr().err
    assert "video test-time views: flip (card's accuracy: crops10 10 view(s), 66.29 %, flip 2 view(s), 65.92 %" in err
