"""The entry point of kvmprep.pyz (app/bundle.py copies it to the archive's
root as ``__main__.py``; it is not imported as part of the package).

1. Says which Python the bundle needs, on any Python 3 (so: 3.6 syntax).
2. Runs kvmprep from a private, verified copy of the archive's tree in
   ``~/.cache/kvmprep/bundle-<digest>`` (``$XDG_CACHE_HOME``): there Python
   keeps compiled bytecode, so that every run after the first starts as fast
   as an installed kvmprep. Straight from the zip, every run would compile
   textual again (the wizard's imports took 4x as long). The copy is used
   only when it, and every directory above it, belongs to this user (or
   root) and nobody else can write to it; otherwise, or with
   ``KVMPREP_BUNDLE_CACHE=0``, kvmprep runs from the zip itself.
"""

import os
import sys

ARCHIVE = os.path.dirname(os.path.abspath(__file__))


def _manifest():
    import json

    return json.loads(__loader__.get_data(os.path.join(ARCHIVE, "kvmprep_bundle.json")).decode("utf-8"))


def _safe(path, euid):
    """``path`` and every directory above it: owned by this user or root, and
    writable by nobody else, unless sticky (like /tmp: there nobody else can
    rename or remove what this user owns, and the level below is checked)."""
    import stat

    path = os.path.realpath(path)
    while True:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if st.st_uid not in (euid, 0) or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _cache_base():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        try:
            import pwd

            home = pwd.getpwuid(os.geteuid()).pw_dir  # not $HOME: sudo may keep the user's
        except (ImportError, KeyError):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "kvmprep")


def _extract(target, base):
    import shutil
    import tempfile
    import time
    import zipfile

    for name in os.listdir(base):  # copies a killed run left half-written
        old = os.path.join(base, name)
        if name.startswith(".tmp-") and os.lstat(old).st_mtime < time.time() - 3600:
            shutil.rmtree(old, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=base)
    try:
        with zipfile.ZipFile(ARCHIVE) as zf:
            for info in zf.infolist():
                name = info.filename
                if name.startswith("/") or ".." in name.split("/") or name.endswith("/"):
                    continue
                dest = os.path.join(tmp, *name.split("/"))
                os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
                with open(dest, "wb") as fh:
                    fh.write(zf.read(info))
        os.chmod(tmp, 0o700)
        os.rename(tmp, target)  # atomic: a copy is whole or absent
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(target):  # unless another run put it there first
            raise


def extracted_tree(manifest):
    """The verified copy of this bundle's tree, made on first use; None to
    run from the zip."""
    if os.environ.get("KVMPREP_BUNDLE_CACHE") == "0":
        return None
    base = _cache_base()
    if base is None:
        return None
    euid = os.geteuid()
    target = os.path.join(base, "bundle-%s-%s" % (manifest["kvmprep"], manifest["digest"][:16]))
    try:
        if not os.path.isdir(target):
            os.makedirs(base, mode=0o700, exist_ok=True)
            if not _safe(base, euid):
                return None
            _extract(target, base)
        st = os.lstat(target)
    except OSError:
        return None  # read-only home, full disk...: run from the zip
    if st.st_uid != euid or st.st_mode & 0o077 or not _safe(target, euid):
        return None
    return target


def main():
    manifest = _manifest()
    floor = tuple(int(p) for p in manifest["python"].split("."))
    if sys.version_info[:2] < floor:
        need = manifest["python"]
        hint = (" On EL8: dnf install python3.11 (or python39), then run it with python3.11."
                if floor <= (3, 11) else " Run it with python%s or newer." % need)
        sys.exit("kvmprep: this bundle needs Python %s or newer; this is %s.%s"
                 % (need, sys.version.split()[0], hint))
    tree = extracted_tree(manifest)
    if tree is not None:
        sys.path[:] = [tree if os.path.abspath(p) == ARCHIVE else p for p in sys.path]
    import remediations.relaunch

    remediations.relaunch.BUNDLE = ARCHIVE  # kvmprep starts this file again, not `-m app`
    from app.cli import entry

    entry()


if __name__ == "__main__":
    main()
