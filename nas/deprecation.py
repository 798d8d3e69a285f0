"""Old names that keep working for a while: keyword arguments renamed to the command line's words (an API
argument is named as the option that gives it, ``device`` for ``--device``), each with a one-line
DeprecationWarning naming the new name and the release that drops the old one. The CLI's old flag spellings
(:mod:`nas.cli.vocabulary`) go in the same release."""
from __future__ import annotations

import functools
import warnings

DROP_VERSION = "0.3"  # the release that removes the deprecated spellings, of keyword arguments and of flags


def renamed_arguments(*, version: str = DROP_VERSION, **renames: str):
    """Decorator: each ``old="new"`` keyword still works, as ``new``, with a DeprecationWarning ``argument 'old'
    is deprecated, use 'new' (removed in <version>)``; giving both is a TypeError, as any argument given twice.

    On a class (a dataclass's fields), its ``__init__`` is wrapped: ``SearchConfig(latency_dtype="fp32")``."""

    def decorate(obj):
        if isinstance(obj, type):
            obj.__init__ = decorate(obj.__init__)
            return obj

        @functools.wraps(obj)
        def accept_old_names(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{obj.__qualname__}() got '{new}' and its deprecated name '{old}'")
                    warnings.warn(f"argument '{old}' is deprecated, use '{new}' (removed in {version})",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return obj(*args, **kwargs)

        accept_old_names.renamed_arguments = dict(renames)  # old -> new, for docs and tests
        return accept_old_names

    return decorate
