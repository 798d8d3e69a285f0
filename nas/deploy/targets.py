"""Which models to export: an architecture given directly, the top of a study's Pareto front, or one trial."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.optuna_compat import storage_of, study_id_of


@dataclass
class Target:
    """One model to export: its architecture, where it came from and which latency tables predict it."""

    name: str
    space: str
    arch: str  # canonical text
    devices: list[str] = field(default_factory=list)
    latency_dtype: str = "arch"
    provenance: dict[str, Any] = field(default_factory=dict)
    space_yaml: str = ""  # a study's target: the space the study searched, as the study stored it (else by name)

    def load_space(self):
        """The SearchSpace of the target: the study's stored space (:mod:`nas.search.record`), else ``space``
        (a name or a YAML path)."""
        from nas.search.record import SPACE_HASH, SPACE_YAML, stored_space
        from nas.space import load_space

        if not self.space_yaml:
            return load_space(self.space)
        study = self.provenance.get("study", "?")
        return stored_space({SPACE_YAML: self.space_yaml, SPACE_HASH: self.provenance.get(SPACE_HASH)}, study)


@renamed_arguments(space_name="space", arch_text="arch")
def target_from_arch(space: str | None, arch: str, devices: list[str] | None = None) -> Target:
    """One architecture ``arch`` (its text) of ``space`` (a name or a YAML path); a baseline's name
    (``nas.space.list_baselines``) implies its space (``space=None``) and names the target."""
    from nas.space import load_space
    from nas.space.baselines import find, implied_space

    searched = load_space(implied_space(arch, space))
    try:
        parsed = searched.parse(arch)
    except NasError as exc:
        raise NasError(f"not an architecture of space '{searched.name}': {exc.problem}", argument="arch",
                       fix=exc.fix or f"sample valid ones with `nas arch sample --space {searched.name}`") from None
    text = searched.format(parsed)
    named = find(arch)
    name = named.name if named else "arch-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return Target(name=name, space=searched.name, arch=text, devices=list(devices or []),
                  provenance={"source": "--arch", **({"baseline": named.name} if named else {})})


@renamed_arguments(study_name="study")
def targets_from_study(storage: str, study: str, *, top_k: int | None = None,
                       trial: int | None = None) -> list[Target]:
    """The first ``top_k`` members of the Pareto front (sorted by latency) of the study named ``study``, or one
    trial (any finished one)."""
    from nas.search.front import front, load_trials

    from nas.search.record import SPACE_HASH, SPACE_YAML

    loaded, cfg, df = load_trials(storage, study)
    attrs = loaded.user_attrs
    common = dict(space=cfg["space"], devices=list(cfg.get("devices", [])),
                  latency_dtype=cfg.get("latency_dtype") or "arch", space_yaml=attrs.get(SPACE_YAML, ""))
    if trial is not None:
        rows = df[df["trial"] == trial] if not df.empty else df
        if rows.empty:
            have = f"{len(df)} finished trials, numbers {df['trial'].min()}..{df['trial'].max()}" if len(df) else "none"
            raise NasError(f"no finished trial {trial} in study '{study}' ({have})", argument="trial",
                           fix="pick a trial from `nas pareto` output (pareto.csv / trials.csv)")
        chosen = rows
    else:
        if top_k is None or top_k < 1:
            raise NasError(f"must be at least 1, got {top_k}", argument="top_k")
        best = front(df, cfg)[0] if not df.empty else df
        if best.empty:
            raise NasError(f"study '{study}' has an empty Pareto front ({len(df)} finished trials, none "
                           "feasible)", argument="study",
                           fix="run more trials or relax the budgets, or export one with trial=N")
        chosen = best.head(top_k)
    return [Target(name=study_target_name(study, int(r["trial"])), arch=str(r["arch"]), **common,
                   provenance={"source": "study", "storage": storage, "study": study, "trial": int(r["trial"]),
                               **({SPACE_HASH: attrs[SPACE_HASH]} if SPACE_HASH in attrs else {}),
                               "metrics": {k: plain(v) for k, v in r.items() if k not in ("trial", "arch")},
                               "trial_attrs": stored_attrs(storage_of(loaded), study_id_of(loaded), int(r["trial"]))})
            for _, r in chosen.iterrows()]


def study_target_name(study_name: str, trial: int) -> str:
    """``<study>-trial<N>``: unique across studies exported into one folder. A study name that is not a plain
    file name (``/``, spaces, ``;``, a leading ``.``) has those characters replaced and a short hash of the real
    name added, so two such studies never share a name."""
    import re

    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", study_name)
    if safe != study_name or safe.startswith("."):
        safe = f"{safe.lstrip('.') or 'study'}-{hashlib.sha1(study_name.encode()).hexdigest()[:6]}"
    return f"{safe}-trial{trial}"


def trial_attrs(storage: str, study_name: str, number: int) -> dict:
    """The stored user attributes of a trial (its provenance), for the card: that trial alone is read."""
    from nas.search.storage import open_storage

    store = open_storage(storage)
    return stored_attrs(store, store.get_study_id_from_name(study_name), number)


def stored_attrs(storage, study_id: int, number: int) -> dict:
    """Trial ``number``'s provenance and metrics, read from an Optuna storage by number (one trial, not a copy
    of every trial of the study)."""
    t = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
    return {k: v for k, v in t.user_attrs.items() if k in ("provenance", "metrics")}


def plain(v):
    """A numpy scalar as the Python number it holds (for JSON); anything else unchanged."""
    if isinstance(v, (np.generic,)):
        return v.item()
    return v
