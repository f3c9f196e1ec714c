"""The boxes and labels that the photo and video commands draw on their annotated copies."""

from __future__ import annotations

import cv2
import numpy as np

from ferflow.predict.tracking import BoxT


def draw_faces(canvas: np.ndarray, boxes: list[BoxT], labels: list[str]) -> None:
    """Draw each box with its label on a filled tag above it (green; in place on an RGB or BGR array)."""
    thickness = max(2, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.5, max(canvas.shape[:2]) / 1200)
    for (x, y, w, h), label in zip(boxes, labels):
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - thickness if y - th - base - thickness >= 0 else y + h
        cv2.rectangle(canvas, (x, top), (x + tw, top + th + base + thickness), (0, 255, 0), -1)
        cv2.putText(
            canvas,
            label,
            (x, top + th + thickness // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )
