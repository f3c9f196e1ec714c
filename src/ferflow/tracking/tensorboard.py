"""TensorBoard event files in a run folder: each epoch's scalars and, when the run ends, its settings and final
metrics for the HParams tab (``tensorboard --logdir results/<dataset>/runs`` compares every run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from ferflow.tracking.logged import EPOCH_METRICS, FINAL_METRICS, flat

EVENTS_GLOB = "events.out.tfevents.*"


class TensorBoardRun:
    """The event files of one run folder. A run started afresh replaces earlier event files; a resumed run
    (``start`` > 1) appends with ``purge_step``, so readers drop what a killed attempt logged from the epoch it saved
    last (``start - 1``, logged again by the trainer) on."""

    def __init__(self, out_dir: Path, settings: dict[str, Any], start: int) -> None:
        if start == 1:
            for stale in out_dir.glob(EVENTS_GLOB):
                stale.unlink()
        self.settings = settings
        self.writer = SummaryWriter(log_dir=str(out_dir), purge_step=start - 1 if start > 1 else None)

    def epoch(self, row: dict[str, float]) -> None:
        for tag, column in EPOCH_METRICS.items():
            self.writer.add_scalar(tag, row[column], row["epoch"])
        self.writer.flush()  # a killed run keeps every finished epoch

    def finish(self, best: dict[str, float], checkpoint: Path) -> None:
        metrics = {tag: float(best[key]) for tag, key in FINAL_METRICS.items()}
        for summary in hparams(flat(self.settings), metrics):
            self.writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, int(best["epoch"]))
        self.writer.close()
