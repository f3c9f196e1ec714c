# The videos of the batch-video target (predict.smk) and the options its jobs pass to `ferflow predict`.
from pathlib import Path

from ferflow.faces import VIDEO_SUFFIXES


def batch_videos():
    """{name: path} of the config's videos; the name (file name without suffix) names its outputs, so it must
    be unique."""
    spec = config["videos"]
    found = [Path(f) for f in spec["files"]]
    if spec["folder"] is not None:
        folder = Path(spec["folder"])
        if not folder.is_dir():
            raise WorkflowError(f"config key videos.folder: {folder} is not a folder")
        found += sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    videos = {}
    for path in found:
        if path.stem in videos:
            raise WorkflowError(f"config key videos: two videos are named {path.stem} ({videos[path.stem]}, {path})")
        videos[path.stem] = str(path)
    return videos


VIDEOS = batch_videos()


def video_csvs(wildcards):
    """The CSV of every video; none is an error (the target asked for, but no video configured)."""
    if not VIDEOS:
        raise WorkflowError("config key videos: no video (set videos.folder or videos.files)")
    return [L.video_file(v, "csv") for v in VIDEOS]


def video_options():
    """`ferflow predict`'s options of the batch-video target (params: a changed one reruns the videos)."""
    spec = config["videos"]
    options = ["--tta", spec["tta"]] + (["--fps", str(spec["fps"])] if spec["fps"] is not None else [])
    return " ".join(options + (["--checkpoint", spec["checkpoint"]] if spec["checkpoint"] else []))
