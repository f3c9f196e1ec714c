"""``ferflow predict`` (no rule: the user's command): its arguments, and the dispatch of the inputs to the photo
command (:mod:`.photos`: photos and folders) or the video command (:mod:`.video`: a video file or a camera), both
on the Python API (:class:`~ferflow.predict.recognizer.EmotionRecognizer`).

Exit status: 0, also when a photo has no face (reported, empty result) or a file cannot be read (reported,
skipped); with ``--strict`` either makes it 1.
"""

from __future__ import annotations

import argparse

from ferflow.detection import DETECTORS, MARGIN, MIN_FACE
from ferflow.device import PREFERENCES
from ferflow.errors import FerflowError
from ferflow.inference import AUTO_TTA, TTA_CHOICES
from ferflow.predict.photos import run_photos
from ferflow.predict.recognizer import EmotionRecognizer
from ferflow.predict.video import is_video, run_video
from ferflow.predict.video_analysis import DETECT_SIDE, REDETECT, check_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="IMAGE_FOLDER_OR_VIDEO",
        help="photos, folders searched recursively for images, or one video file",
    )
    parser.add_argument(
        "--checkpoint",
        help="a ferflow checkpoint (best.pt) or its ONNX export (.onnx) (default: the model shipped with ferflow)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table (photos)")
    parser.add_argument(
        "--annotate",
        metavar="OUT",
        help="photos: write each with boxes and labels drawn into this folder; video: the annotated video (.mp4, .avi)",
    )
    parser.add_argument(
        "--no-detect", action="store_true", help="every image is already a face crop: skip detection (photos)"
    )
    parser.add_argument(
        "--detector",
        choices=list(DETECTORS),
        default="haar",
        help="face detector: OpenCV's Haar cascade, or dlib's HOG detector (the 'dlib' extra: finds more, slower)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a photo has no face or cannot be read")
    parser.add_argument(
        "--margin", type=float, default=MARGIN, help="widen each face box by this fraction of its side on each side"
    )
    parser.add_argument(
        "--min-face", type=int, default=MIN_FACE, metavar="N", help="smallest face side in pixels to detect"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="faces classified together")
    parser.add_argument("--threads", type=int, help="CPU threads of PyTorch, ONNX Runtime and OpenCV (default: theirs)")
    parser.add_argument(
        "--device", choices=PREFERENCES, default="auto", help="where a checkpoint runs (ONNX models: the CPU)"
    )
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default=AUTO_TTA,
        help="test-time augmentation: mean over these views (auto: the checkpoint's recommended views, else none; "
        "for a video or camera the fewest its card measures within 0.5 points of the best)",
    )
    video = parser.add_argument_group("video and camera")
    video.add_argument("--camera", type=int, metavar="INDEX", help="read frames from this camera instead of a file")
    sampling = video.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=int, metavar="N", help="classify every N-th frame (default: every frame)")
    sampling.add_argument("--fps", type=float, help="classify this many frames per second of video")
    video.add_argument("--csv", help="the per-face CSV to write (default: <video name>.emotions.csv here)")
    video.add_argument(
        "--plot", help="the PNG of each face's probabilities over time (default: <video name>.emotions.png here)"
    )
    video.add_argument(
        "--detect-side",
        type=int,
        default=DETECT_SIDE,
        metavar="PX",
        help="frames are downscaled to this longest side for detection over the whole frame "
        "(dlib finds faces from about 80 px of this size)",
    )
    video.add_argument(
        "--redetect",
        type=int,
        default=REDETECT,
        metavar="N",
        help="search the whole frame every N analysed frames, and only around the tracked faces in "
        "between (1: always the whole frame)",
    )
    video.add_argument(
        "--max-frames", type=int, metavar="N", help="stop after N frames (a camera runs until Ctrl+C otherwise)"
    )


def run(args: argparse.Namespace) -> int:
    check_options(args.fps, every=args.every, detect_side=args.detect_side, redetect=args.redetect)
    check_options(None, max_frames=args.max_frames)
    if not args.inputs and args.camera is None:
        raise FerflowError("no input: give photos, folders, a video file or --camera")
    recognizer = EmotionRecognizer(
        args.checkpoint,
        args.device,
        args.tta,
        detect=not args.no_detect,
        detector=args.detector,
        margin=args.margin,
        min_face=args.min_face,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    if args.camera is not None or any(is_video(i) for i in args.inputs):
        return run_video(args, recognizer)
    return run_photos(args, recognizer)
