"""What every tracker logs: the metric names of each epoch and of the run's outcome, and the settings flattened."""

from __future__ import annotations

from typing import Any

EPOCH_METRICS = {  # tracker metric name: history.csv column, logged every epoch
    "loss/train": "train_loss",
    "loss/val": "val_loss",
    "accuracy/train": "train_acc",
    "accuracy/val": "val_acc",
    "macro_f1/val": "val_macro_f1",
    "lr": "lr",
}
FINAL_METRICS = {  # tracker metric name: key of the best epoch's history row, logged when the run ends
    "final/val_macro_f1": "val_macro_f1",
    "final/val_acc": "val_acc",
    "final/val_loss": "val_loss",
    "final/best_epoch": "epoch",
}


def flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"augmentation.zoom": 0.1, ...}`` with scalar values (None and lists as text)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out
