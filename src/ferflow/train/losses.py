"""Training losses on soft targets: cross-entropy or focal loss with label smoothing and class weights,
and knowledge distillation from a teacher's logits.

Targets are class distributions ``(N, classes)`` so that mixup and cutmix (``ferflow.train.mixing``) mix them;
a hard label is its one-hot row. With every option off the loss equals ``F.cross_entropy(logits, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """``n / (classes · count_c)`` per class (scikit-learn's "balanced"); absent classes get weight 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(labels), num_classes * counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


@dataclass
class Criterion:
    """The loss of one batch of logits against soft targets (see the module docstring)."""

    label_smoothing: float = 0.0
    focal_gamma: float | None = None
    class_weights: torch.Tensor | None = None

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + self.label_smoothing / targets.shape[1]
        log_p = F.log_softmax(logits, dim=1)
        per_class = -targets * log_p
        if self.focal_gamma is not None:
            per_class = per_class * (1 - log_p.exp()).pow(self.focal_gamma)
        per_sample = per_class.sum(dim=1)
        if self.class_weights is None:
            return per_sample.mean()
        weight = targets @ self.class_weights  # on the logits' device (make_engine puts it there)
        return (per_sample * weight).sum() / weight.sum()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target term: ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, batch mean."""
    log_student = F.log_softmax(student.float() / temperature, dim=1)
    log_teacher = F.log_softmax(teacher.float() / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2
