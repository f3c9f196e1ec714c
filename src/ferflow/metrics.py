"""Classification metrics of predictions against labels (scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ferflow.classes import CLASS_NAMES, NUM_CLASSES


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and confusion matrices (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    rows = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion": confusion.astype(int).tolist(),
        "confusion_normalized": normalized.round(6).tolist(),
        "classes": list(CLASS_NAMES),
        "n_images": int(len(y_true)),
    }
