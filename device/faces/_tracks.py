"""Faces followed from frame to frame, so a slow classifier can spread its work over several frames.

Each face in a new frame is matched to the face of the previous frame it overlaps most (box IoU). A matched
face keeps the emotion probabilities it was last given until it is classified again; `order` says which faces
need the classifier most: new faces first (largest first), then the faces classified longest ago.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.events import Face

MATCH_IOU = 0.3


def iou(a: Face, b: Face) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    face: Face
    probabilities: tuple[float, ...] | None = None  # None until classified
    classified_frame: int = -1


class FaceTracks:
    def __init__(self) -> None:
        self._tracks: list[Track] = []
        self._frame = 0

    def follow(self, faces: list[Face]) -> list[Track]:
        """One track per face of this frame (same order), carrying what is known of it from earlier frames."""
        self._frame += 1
        old = list(self._tracks)
        pairs = sorted(
            ((iou(f, t.face), i, j) for i, f in enumerate(faces) for j, t in enumerate(old)),
            reverse=True,
        )
        matched: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, i, j in pairs:
            if overlap < MATCH_IOU:
                break
            if i in matched or j in used:
                continue
            matched[i] = old[j]
            used.add(j)
        self._tracks = []
        for i, face in enumerate(faces):
            before = matched.get(i)
            track = Track(face, before.probabilities, before.classified_frame) if before else Track(face)
            self._tracks.append(track)
        return self._tracks

    def order(self, tracks: list[Track]) -> list[Track]:
        """The tracks in the order they should be classified: new faces (largest first), then the stalest."""
        return sorted(tracks, key=lambda t: (t.probabilities is not None, t.classified_frame, -t.face.w * t.face.h))

    def classified(self, track: Track, probabilities: tuple[float, ...]) -> None:
        track.probabilities = probabilities
        track.classified_frame = self._frame
