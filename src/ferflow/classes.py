"""Class names: the canonical names ferflow knows, the class lists of the datasets it reads, and their name maps.

A dataset's class list comes from the data (its class folders, its CSV's codes, FER+'s vote columns) and is
stored with every split file and checkpoint (:class:`ferflow.storage.Split`, :mod:`ferflow.checkpoint`); label
``i`` of a split or a model is ``classes[i]``. Every list is in canonical order (:data:`KNOWN_CLASSES`), so two
datasets with the same classes number them alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ferflow.errors import FerflowError

KNOWN_CLASSES: tuple[str, ...] = ("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""Every canonical class name, in the canonical (alphabetical) order."""

CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""FER2013's seven classes (its folders sort so), the default class list of a split or checkpoint that stores none."""

FERPLUS_VOTES: tuple[str, ...] = (
    "neutral",
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "not_face",
)
"""The ten vote columns of FER+'s ``label.csv`` (Microsoft's order: neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF), in canonical names; the first eight are emotions."""

FERPLUS_CLASSES: tuple[str, ...] = tuple(c for c in KNOWN_CLASSES if c in FERPLUS_VOTES)
"""FER+'s eight emotions, FER2013's seven and contempt."""

ALIASES: dict[str, str] = {
    # AffectNet's folder and annotation names, FER+'s column names
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
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


def canonical(name: str, class_map: Mapping[str, str | None] | None = None) -> str:
    """Map a dataset's class name to ferflow's (case-insensitive), through ``class_map`` first (a dataset's own
    names; a name mapped to None or '' is a class that is dropped, returned as '').

    Raises KeyError naming the class when it maps to nothing."""
    key = name.strip().lower()
    mapped = {str(k).strip().lower(): v for k, v in (class_map or {}).items()}
    if key in mapped:
        target = mapped[key]
        return canonical(target) if target else ""
    if key in KNOWN_CLASSES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise KeyError(
        f"unknown class name {name!r} (known: {', '.join(KNOWN_CLASSES)}; aliases: {', '.join(ALIASES)}; "
        "or map it to one of them)"
    )


def class_list(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names in the canonical order, each once (a dataset's class list from the names it holds)."""
    present = set(names)
    unknown = present - set(KNOWN_CLASSES)
    if unknown:
        raise FerflowError(f"unknown class name(s) {', '.join(sorted(unknown))} (known: {', '.join(KNOWN_CLASSES)})")
    return tuple(c for c in KNOWN_CLASSES if c in present)


def label_of(name: str, classes: tuple[str, ...] = CLASS_NAMES) -> int:
    """Integer label of a class name among ``classes`` (FER2013's by default)."""
    return classes.index(canonical(name))


def shared_classes(model: tuple[str, ...], data: tuple[str, ...], source: str) -> tuple[str, ...]:
    """The classes that a model and a dataset share, in the model's order; a one-line error naming ``source``
    when they share none."""
    shared = tuple(c for c in model if c in data)
    if not shared:
        raise FerflowError(
            f"{source}: its classes ({', '.join(data)}) share none with the model's ({', '.join(model)})"
        )
    return shared
