"""How kvmprep starts itself again (the detached apply, the wizard's undo).

The same interpreter and the same code that is running now: the installed
package, or the ``kvmprep.pyz`` bundle it was started from. ``-I`` keeps the
working directory (an ``app/`` folder in an admin's home, say) and the
PYTHON* variables out of a process that runs as root.
"""

from __future__ import annotations

import sys


BUNDLE: str | None = None  # set by the bundle's __main__ (app/bundle_main.py)


def bundle_path() -> str | None:
    """The kvmprep.pyz archive this code runs from, or None when installed.
    From the bundle, the code runs from a cached copy of the archive's tree
    (BUNDLE says which archive) or from the zip itself (its loader says)."""
    import remediations

    return BUNDLE or getattr(getattr(remediations, "__loader__", None), "archive", None)


def kvmprep_argv(*args: str) -> list[str]:
    archive = bundle_path()
    if archive:
        return [sys.executable, "-I", archive, *args]
    return [sys.executable, "-I", "-m", "app", *args]
