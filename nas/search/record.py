"""What a study records about what produced its scores, so a later process reads the same things.

The search space: its YAML text and that text's hash (user attributes ``space_yaml`` and ``space_hash``, set when
the study is created). ``nas pareto`` and ``nas export --study`` rebuild the space from that text, never by
name: a user's file that keeps a shipped name is not replaced by the shipped space, a renamed or moved file is
still found. A study created before this record has only the space's name (the old behaviour: by name).
"""
from __future__ import annotations

import hashlib
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
                       argument="study_name", fix="the study's user attributes were edited; use a new study")
    return load_space_file(f"study '{study_name}': {SPACE_YAML}", text=text)
