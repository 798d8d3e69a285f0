"""What a study records about what produced its scores, so a later process reads the same things.

The search space: its YAML text and that text's hash (user attributes ``space_yaml`` and ``space_hash``, set when
the study is created). ``nas pareto`` and ``nas export --study`` rebuild the space from that text, never by
name: a user's file that keeps a shipped name is not replaced by the shipped space, a renamed or moved file is
still found. A study created before this record has only the space's name (the old behaviour: by name).

What its scores and prices depend on (:func:`score_record`, in the ``config`` attribute's ``record``): the
space's structure, each table's content / calibration / pricing metadata, a user's data content, the
scorer's options and each proxy's definition version (a record without versions was made when every proxy was at
version 1); with the proxy seed and ``allow_estimate`` beside the other options. A resumed study whose
record differs from this run's is refused naming what changed (:func:`record_change`); one created before the
record resumes with a note (:class:`UncheckedResumeWarning`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nas.errors import NasError

SPACE_YAML, SPACE_HASH = "space_yaml", "space_hash"


def text_hash(text: str) -> str:
    """sha256 (first 16 hex) of a text as stored."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def space_record(space) -> dict[str, str]:
    """``{space_yaml, space_hash}`` of the file ``space`` was read from; checked against ``space`` (a file changed
    since it was read is an error, not a record of another space). Empty for a space with no readable file (a
    SearchSpace built in code): such a study is reloaded by name."""
    from nas.space import load_space_file

    path = Path(space.path) if space.path else None
    if path is None or not path.is_file():
        return {}
    text = path.read_text()
    if load_space_file(path, text=text).structure_hash != space.structure_hash:
        raise NasError("the space file changed since it was read", where=str(path), argument="space",
                       fix="run again (the file is read afresh)")
    return {SPACE_YAML: text, SPACE_HASH: text_hash(text)}


def stored_space(attrs: dict, study_name: str):
    """The SearchSpace a study searched, from its user attributes ``attrs``: its stored YAML, or, for a study
    created before spaces were stored, the space named in its config (loaded by name)."""
    from nas.space import load_space, load_space_file

    text = attrs.get(SPACE_YAML)
    if text is None:
        return load_space(attrs["config"]["space"])
    if text_hash(text) != attrs.get(SPACE_HASH):
        raise NasError(f"study '{study_name}': its stored space does not match its hash (space_hash)",
                       argument="study", fix="the study's user attributes were edited; use a new study")
    return load_space_file(f"study '{study_name}': {SPACE_YAML}", text=text)


# --------------------------------------------------------------------------------------------------------
# what produced a study's scores and prices, checked when it is resumed
# --------------------------------------------------------------------------------------------------------
class UncheckedResumeWarning(UserWarning):
    """A resumed study was created before nas recorded what produced its scores: they cannot be checked."""


def unchecked_note(study_name: str) -> str:
    return (f"study '{study_name}' was created before nas recorded what produced its scores (table contents, "
            "space, data, proxy seed, estimates): resumed, but its earlier scores are not checked against this run")


def table_record(model) -> dict:
    """What a latency model's prices depend on, without where its file is: the table's content hash, its
    deployment dtype, its calibration (values, not date), its pricing metadata (fixed groups, granularity,
    boundaries) and, for a transferred model, its source tables'. The same measurements read from another folder
    (or re-written with the same content) record the same."""
    ident = model.identity
    calibration = ident.get("calibration")
    out = {"content_hash": ident.get("content_hash"), "dtype": ident.get("dtype"),
           "calibration": {k: v for k, v in calibration.items() if k != "date"} if calibration else None}
    table = getattr(model, "table", None)
    if table is not None:
        pricing = {k: table.meta.get(k) for k in ("fixed", "granularity", "boundaries")}
        out["pricing"] = text_hash(json.dumps(pricing, sort_keys=True, default=str))
    sources = getattr(model, "sources", None)
    if sources:
        out["sources"] = {s.device: table_record(s) for s in sources}
    return out


def data_hash(data: str) -> str | None:
    """sha256 (first 16 hex) of a user's data (training images, labels, class names); None for the built-in
    data sets (named by their name)."""
    from nas.data import datasets, user

    if data in datasets.DATASETS:
        return None
    d = user.read(data)
    h = hashlib.sha256()
    for part in (d.x_train, d.y_train):
        h.update(repr((part.dtype.str, part.shape)).encode())
        h.update(part.tobytes())
    h.update("\n".join(d.classes).encode())
    return h.hexdigest()[:16]


def score_record(space, models: dict, scorer) -> dict:
    """What the stored scores and prices of a study depend on beyond its options (``config``): the space's
    structure, each latency model's :func:`table_record`, the user's data content, the scorer's options and the
    proxies' definition versions."""
    from nas.proxies import definition_versions

    return {"space": space.structure_hash, "tables": {d: table_record(m) for d, m in models.items()},
            "data_hash": data_hash(scorer.data),
            "proxy_options": {"batch_size": scorer.batch_size, "train_options": dict(scorer.train_options)},
            "proxy_versions": definition_versions(scorer.proxies)}


_TABLE_PARTS = {"content_hash": "content", "dtype": "deployment dtype", "calibration": "calibration",
                "pricing": "fixed groups / boundaries / granularity", "sources": "source tables"}


def record_change(study_name: str, stored: dict, current: dict) -> str | None:
    """One line naming the first thing that differs between a study's stored record and this run's (None: same)."""
    created = f"study '{study_name}' was created with"
    if stored.get("space") != current["space"]:
        return (f"{created} another space: its structure changed (structure_hash {stored.get('space')} -> "
                f"{current['space']})")
    old_tables = stored.get("tables") or {}
    for device, new in current["tables"].items():
        old = old_tables.get(device, {})
        for key, what in _TABLE_PARTS.items():
            if old.get(key) != new.get(key):
                return (f"{created} table '{device}' of another {what} ({_short(old.get(key))}; this run's: "
                        f"{_short(new.get(key))}): one front would mix two tables")
    if stored.get("data_hash") != current["data_hash"]:
        return (f"{created} data of another content (hash {stored.get('data_hash')}; now {current['data_hash']}): "
                "the proxy scores would mix two data sets")
    if stored.get("proxy_options") != current["proxy_options"]:
        return f"{created} proxy options {stored.get('proxy_options')}, this run asks for {current['proxy_options']}"
    return _proxy_version_change(created, stored, current)


def _proxy_version_change(created: str, stored: dict, current: dict) -> str | None:
    """The first proxy whose definition changed since the study was scored (a record without versions: all 1)."""
    from nas.proxies import PROXIES

    old_versions = stored.get("proxy_versions") or {}
    for name, version in current.get("proxy_versions", {}).items():
        old = old_versions.get(name, 1)
        if old != version:
            return (f"{created} proxy {name} version {old}; this nas scores with version {version}, "
                    f"{PROXIES[name].changed or 'another definition'}: one front would mix two definitions")
    return None


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
