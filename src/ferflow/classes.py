"""The one canonical class order, and the name maps of the datasets ferflow reads."""

CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""Canonical order (alphabetical, as the FER2013 class folders sort); label i is CLASS_NAMES[i]."""

NUM_CLASSES = len(CLASS_NAMES)

ALIASES: dict[str, str] = {
    # AffectNet's folder and annotation names
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "contempt": "",  # no FER2013 counterpart: dropped
}

ICML_CODES: dict[int, str] = {
    0: "angry",
    1: "disgust",
    2: "fear",
    3: "happy",
    4: "sad",
    5: "surprise",
    6: "neutral",
}
"""Emotion codes of the original ICML 2013 CSV (fer2013.csv / icml_face_data.csv)."""


def canonical(name: str) -> str:
    """Map a dataset's class name to ferflow's (case-insensitive); '' for a class that is dropped.

    Raises KeyError naming the class when it maps to nothing.
    """
    key = name.strip().lower()
    if key in CLASS_NAMES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise KeyError(f"unknown class name {name!r} (known: {', '.join(CLASS_NAMES)}; aliases: {', '.join(ALIASES)})")


def label_of(name: str) -> int:
    """Integer label of a canonical class name."""
    return CLASS_NAMES.index(canonical(name))
