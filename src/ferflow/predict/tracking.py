"""Face identities across video frames: greedy intersection-over-union matching of boxes.

Each new frame's boxes are matched to the live tracks' latest boxes, the pair with the largest IoU
first, as long as it is at least ``min_iou``; an unmatched box starts a new track (ids count up from 1),
and a track unmatched for more than ``max_missed`` frames in a row ends, so that a face that leaves
and comes back gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferflow.detection import BoxT, iou


@dataclass
class Track:
    id: int
    box: BoxT
    missed: int = 0


class IouTracker:
    """Assigns a track id to every box of each successive frame."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou, self.max_missed = min_iou, max_missed
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(self, boxes: list[BoxT]) -> list[int]:
        """The track id of each of this frame's ``boxes``, in their order."""
        pairs = sorted(
            ((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)), reverse=True
        )
        ids: list[int | None] = [None] * len(boxes)
        matched: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in matched or ids[bi] is not None:
                continue
            matched.add(ti)
            ids[bi] = self.tracks[ti].id
            self.tracks[ti].box, self.tracks[ti].missed = boxes[bi], 0
        for ti, track in enumerate(self.tracks):
            if ti not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for bi, box in enumerate(boxes):
            if ids[bi] is None:
                self.tracks.append(Track(self.next_id, box))
                ids[bi] = self.next_id
                self.next_id += 1
        return [i for i in ids if i is not None]
