"""Optuna storage from a URL: which URLs mean what, opening them, and what is safe to show of them.

- ``sqlite:///file.db`` (the default) and ``postgresql://...``: Optuna's RDBStorage (SQLite in WAL mode).
- ``journal:FILE.journal`` (relative to the working folder, like ``sqlite:///FILE.db``; ``journal:///abs/FILE.journal``
  is an absolute path, as in a ``file://`` URL; any path ending in ``.journal`` works too): Optuna's
  JournalFileBackend, the fast choice for several local processes (no fsync per record; unfinished trials
  listed without walking the finished ones; a sampler's proposal written in one append).

A worker killed mid-trial loses nothing: its trial's heartbeat stops and another worker fails and re-queues it
(:mod:`nas.search.heartbeat`). Every URL shown or stored goes through :func:`public_url` (no password).
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

from nas import optuna_compat
from nas.errors import NasError, first_line
from nas.search.heartbeat import base_grace_s

DEFAULT_STORAGE = "sqlite:///nas-studies.db"
DEFAULT_JOURNAL = "journal:nas-studies.journal"  # the working folder, like DEFAULT_STORAGE


# scheme://user:password@ as SQLAlchemy's URL grammar reads it (a password runs to the next '@')
_USERINFO = re.compile(r"^(?P<head>[\w+]+://[^:/]*):(?P<password>[^@]*)@")


def public_url(url: str, *, password: str | None = "***") -> str:
    """``url`` safe to show or store: its password replaced by ``password``, or left out (``None``: for a
    command to paste, which then reads it from PGPASSWORD or ~/.pgpass). A URL without a password is unchanged.
    Every URL this package prints, stores (cards, reports) or puts into an error goes through here."""
    m = _USERINFO.match(url)
    if m is None:
        return url
    return f"{m['head']}{'' if password is None else ':' + password}@{url[m.end():]}"


def _scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's message) with ``url`` and its password masked."""
    m = _USERINFO.match(url)
    text = text.replace(url, public_url(url))
    return text.replace(m["password"], "***") if m is not None and len(m["password"]) >= 3 else text


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".journal")


def journal_path(url: str) -> Path:
    """The file of a journal URL: ``journal:FILE`` relative to the working folder, ``journal:///abs/FILE``
    absolute (``journal:////abs/FILE`` too: a ``//`` lead is one root, not POSIX's implementation-defined one)."""
    text = url.split("journal://", 1)[1] if url.startswith("journal://") else url.removeprefix("journal:")
    return Path("/" + text.lstrip("/") if text.startswith("//") else text)


def _check_journal_path(path: Path, url: str) -> None:
    """A journal file directly in the filesystem root is the ``journal:///FILE`` slip (three slashes make an
    absolute path here, unlike in ``sqlite:///FILE``): every project on the machine would share it."""
    if path.is_absolute() and path.parent == Path(path.anchor):
        raise NasError(f"storage {url} is {path}, at the filesystem root", argument="storage",
                       fix=f"for the working folder write journal:{path.name} (journal:///abs/folder/{path.name} "
                           "for an absolute path)")


def open_storage(url: str):
    """An Optuna storage for ``url``; unreachable or malformed URLs raise a one-line NasError."""
    if is_journal(url):
        return _open_journal(url)
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise NasError(f"unsupported storage URL {public_url(url)}", argument="storage",
                       fix="use sqlite:///FILE.db, journal:FILE.journal or postgresql://USER@HOST/DB")
    if url.startswith("sqlite:///"):
        _make_parent(Path(url.removeprefix("sqlite:///")), url)
    storage = _open_rdb(url)
    if url.startswith("sqlite:"):
        _sqlite_wal(storage.engine)
    return storage


def stored_config(url: str, study_name: str) -> dict | None:
    """The search config a study recorded (``config`` user attribute), or None if there is no such study yet.
    Creates nothing: a SQLite or journal file that does not exist has no studies."""
    if is_journal(url):
        if not journal_path(url).is_file():
            return None
    elif url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    storage = open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get("config")


def _open_journal(url: str):
    from optuna.storages.journal import JournalFileSymlinkLock

    path = journal_path(url)
    _check_journal_path(path, url)
    _make_parent(path, url)
    # a worker killed while holding the file lock leaves it behind; it is stale after the grace period
    lock = JournalFileSymlinkLock(str(path), grace_period=int(math.ceil(base_grace_s())))
    return _journal_storage_class()(_journal_backend_class()(str(path), lock_obj=lock))


@functools.cache
def _journal_storage_class():
    """JournalStorage whose listings of unfinished trials skip the study's leading finished ones, and which takes
    a sampler's whole proposal in one append (``set_trial_params``).

    Optuna asks for the WAITING trials before every trial (``Study.ask``), and its journal storage answers by
    walking every trial of the study (~1 us each: 10 ms a trial at 10,000 trials). A finished trial never
    changes state again, so a listing that asks only for unfinished states can start after the longest run of
    finished trials seen so far (:func:`nas.optuna_compat.journal_open_trials`); where Optuna's replay state is
    laid out otherwise (or the study is unknown), Optuna's own listing answers."""
    import copy

    import optuna

    class PrefixSkippingJournalStorage(optuna.storages.JournalStorage):
        def get_all_trials(self, study_id, deepcopy=True, states=None):
            found = None
            if states is not None and not any(s.is_finished() for s in states):
                prefix = self.__dict__.setdefault("_finished_prefix", {})
                found = optuna_compat.journal_open_trials(self, study_id, states, prefix)
            if found is None:
                return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
            return copy.deepcopy(found) if deepcopy else found

        def set_trial_params(self, trial_id, params) -> None:
            """Set several parameters of a running trial (``{name: (value, distribution)}``) in one append:
            each is still its own SET_TRIAL_PARAM record, as ``set_trial_param`` writes it, but one lock, one
            write and one read-back serve them all (a define-by-run trial otherwise pays each of its ~20-100
            choices as a journal round trip)."""
            optuna_compat.journal_set_trial_params(self, trial_id, params)

    return PrefixSkippingJournalStorage


def _open_rdb(url: str):
    import optuna

    engine_kwargs = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # sqlalchemy raises many types; all mean "cannot use this URL"
        first = _scrub(first_line(exc), url)
        if "Failed to import DB access module" in first:
            package, install = driver_hint(url)
            raise NasError(f"storage {public_url(url)} needs the {package} driver, which is not installed",
                           argument="storage", fix=install) from None
        raise NasError(f"cannot open storage {public_url(url)} ({first})", argument="storage",
                       fix="check that the server is running and the URL, user and database are right") from None


# SQLAlchemy's name of a DB-API driver -> (the package that provides it, how to install it)
DRIVER_PACKAGES = {
    "psycopg": ("psycopg", "pip install 'psycopg[binary]' (or: pip install -e '.[postgres]')"),
    "psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "pg8000": ("pg8000", "pip install pg8000"),
    "mysqldb": ("mysqlclient", "pip install mysqlclient"),
    "pymysql": ("PyMySQL", "pip install PyMySQL"),
    "mysqlconnector": ("mysql-connector-python", "pip install mysql-connector-python"),
    "mariadbconnector": ("mariadb", "pip install mariadb"),
}


def driver_hint(url: str) -> tuple[str, str]:
    """(package, install command) of the DB-API driver a database URL needs: the one named after ``+`` in
    ``dialect+driver://``, else the dialect's default (SQLAlchemy's choice: postgresql -> psycopg, mysql ->
    mysqlclient)."""
    from sqlalchemy.engine import make_url

    try:
        driver = make_url(url).get_dialect().driver
    except Exception:  # a malformed URL or an unknown dialect/driver: name what the URL says
        driver = url.split("://", 1)[0].partition("+")[2] or url.split(":", 1)[0]
    return DRIVER_PACKAGES.get(driver, (driver, f"install the Python DB-API module '{driver}'"))


def _journal_backend_class():
    """JournalFileBackend without an fsync per record.

    Optuna fsyncs every appended record; a define-by-run trial of mobilenet-c10 writes ~100 records (one per
    choice), so fsync dominated the trial time (15 of 20 s for 40 trials here). Records still reach the
    kernel before the call returns, so other processes see them and a killed worker loses nothing; only
    a power cut can lose the last records (never corrupt earlier ones: each record is one appended line).
    """
    import json

    from optuna.storages.journal import JournalFileBackend

    class ProcessSafeJournalFileBackend(JournalFileBackend):
        def append_logs(self, logs):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            optuna_compat.journal_file_append(self, text.encode("utf-8"))

    return ProcessSafeJournalFileBackend


def _make_parent(path: Path, url: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasError(f"cannot create the folder {path.parent} for storage {url} ({exc.strerror})",
                       argument="storage", fix="choose a writable location") from None


def _sqlite_wal(engine) -> None:
    """WAL journal + synchronous=NORMAL: several times fewer fsyncs per trial, still crash-safe for the
    database (a power cut may lose the last trials, never corrupt the study)."""
    from sqlalchemy import event

    def on_connect(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener are dropped
