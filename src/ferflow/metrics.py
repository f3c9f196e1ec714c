"""Classification metrics of predictions against labels (scikit-learn), the one definition for validation and test.

Predictions are over the model's classes; labels over the data's, which may be fewer or others (the AffectNet
sample has three, FER+ adds contempt). Scores are taken on the *scored classes*, those the model and the data
share (:func:`ferflow.classes.shared_classes`, which refuses data that shares none): accuracy over the images of
those classes, precision, recall and F1 of each, and macro-F1 as the mean F1 over them (a scored class without
images or predictions scores 0). An image of a class the model does not know is left out and counted
(``n_unscored``); predicting a class the data does not hold is an error like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ferflow.classes import CLASS_NAMES, shared_classes


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: tuple[str, ...] = CLASS_NAMES,
    data_classes: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and confusion matrices of ``y_pred`` (indices into
    the model's ``classes``) against ``y_true`` (indices into ``data_classes``, the model's by default)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    data_classes = tuple(classes if data_classes is None else data_classes)
    scored = list(shared_classes(classes, data_classes, "the labels"))
    to_model = np.array([classes.index(c) if c in classes else -1 for c in data_classes], dtype=np.int64)
    truth = to_model[np.asarray(y_true, dtype=np.int64)] if len(y_true) else np.zeros(0, dtype=np.int64)
    kept = truth >= 0
    truth, pred = truth[kept], np.asarray(y_pred, dtype=np.int64)[kept]
    labels = [classes.index(c) for c in scored]
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    confusion = confusion_matrix(truth, pred, labels=list(range(len(classes))))[labels]
    rows = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    return {
        "accuracy": float(np.mean(truth == pred)) if len(truth) else 0.0,
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(scored)
        },
        "confusion": confusion.astype(int).tolist(),
        "confusion_normalized": normalized.round(6).tolist(),
        "classes": list(classes),
        "scored_classes": scored,
        "n_images": int(kept.sum()),
        "n_unscored": int((~kept).sum()),
    }


def mean_recall(metrics: dict[str, Any]) -> float:
    """The mean recall over a metrics dict's scored classes (balanced accuracy on them)."""
    recalls = [scores["recall"] for scores in metrics["per_class"].values()]
    return float(np.mean(recalls)) if recalls else 0.0
