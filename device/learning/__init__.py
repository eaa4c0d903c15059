"""The household learner: corrections of misread moods teach the box, with no picture kept.

`Adjustment` is what the pipeline applies to each face's reading; `learn` fits and guards one from corrections;
`Household` keeps the corrections and the room's everyday readings in the store and refits when they change.
"""

from device.learning._adjustment import MAX_SHIFT, NO_ADJUSTMENT, Adjustment
from device.learning._learner import NOTHING_LEARNED, Learned, LearnerSettings, learn
from device.learning._recent import FaceReading, RecentReadings, weighted_average

__all__ = [
    "MAX_SHIFT",
    "NOTHING_LEARNED",
    "NO_ADJUSTMENT",
    "Adjustment",
    "FaceReading",
    "Learned",
    "LearnerSettings",
    "RecentReadings",
    "learn",
    "weighted_average",
]
