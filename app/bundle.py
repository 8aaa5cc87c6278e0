"""``kvmprep bundle``: one file for air-gapped servers.

Writes a zipapp of the running kvmprep and of its pure-Python dependencies,
taken from what is installed (no network). It runs as ``python3 kvmprep.pyz``
with any Python from 3.9 on, with ``-I`` too, from any directory.

Reproducible: members in sorted order, fixed timestamps and modes, no
bytecode and nothing that records where or when it was built (RECORD,
INSTALLER, direct_url.json), so the same install gives the same bytes.
Compiled extensions are left out (PyYAML then uses its pure-Python parser).
The entry point, app/bundle_main.py, runs kvmprep from a verified copy in the
user's cache, where Python can keep bytecode (see there).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import zipfile

OWN_PACKAGES = ("app", "screens", "checks", "remediations")
DIST = "kvmprep"
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry
SKIP_DIST_INFO = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
COMPILED = (".so", ".pyd", ".dylib", ".pyc", ".pyo")
FLOOR = (3, 9)  # the oldest Python kvmprep supports



class BundleError(Exception):
    """The bundle cannot be built from this install: says which package and why."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, set[str], str]:
    """'markdown-it-py[linkify] (>=2.1.0) ; python_version < "3.11"' ->
    (name, extras, marker). Enough of PEP 508 for Requires-Dist lines."""
    req, _, marker = spec.partition(";")
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    if not m:
        raise BundleError(f"cannot read the requirement {spec!r}")
    extras = {_norm(e) for e in (m.group(2) or "").split(",") if e.strip()}
    return m.group(1), extras, marker.strip()


def _wanted(marker: str, extras: set[str], installed: bool) -> bool:
    """Whether a requirement belongs in the bundle. An ``extra ==`` marker
    counts only for the extras asked for; any other marker was already
    decided by pip for this interpreter: what it installed is what we carry."""
    named = {_norm(e) for e in re.findall(r"""extra\s*==\s*["']([^"']+)["']""", marker)}
    if named:
        return bool(named & extras) and installed
    return installed or not marker


def _closure() -> list:
    """kvmprep's distribution and every distribution it needs, resolved from
    the installed metadata."""
    from importlib import metadata

    def dist_of(name):
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None

    root = dist_of(DIST)
    if root is None:
        raise BundleError("kvmprep's package metadata is not installed (install it with pip first)")
    seen, order, queue = {}, [], [(root, set())]
    while queue:
        dist, extras = queue.pop()
        key = _norm(dist.metadata["Name"])
        if key in seen and extras <= seen[key]:
            continue
        if key not in seen:
            order.append(dist)
        seen[key] = seen.get(key, set()) | extras
        for spec in dist.requires or []:
            name, req_extras, marker = _requirement(spec)
            dep = dist_of(name)
            if not _wanted(marker, seen[key], dep is not None):
                continue
            if dep is None:
                raise BundleError(f"{dist.metadata['Name']} needs {name}, which is not installed")
            queue.append((dep, req_extras))
    return sorted(order, key=lambda d: _norm(d.metadata["Name"]))


def _min_python(requires: str | None) -> tuple[int, int]:
    """The lowest Python a Requires-Python allows (its >= or ~= bound)."""
    best = FLOOR
    for op, ver in re.findall(r"(>=|~=|>)\s*(\d+(?:\.\d+)?)", requires or ""):
        parts = tuple(int(p) for p in ver.split("."))
        low = parts + (0,) * (2 - len(parts))
        if op == ">":
            low = (low[0], low[1] + 1)
        best = max(best, low[:2])
    return best


def _own_files() -> dict[str, bytes]:
    """kvmprep's own packages, from where they are imported (installed or an
    editable source tree): every file but bytecode caches."""
    import importlib

    files = {}
    for pkg in OWN_PACKAGES:
        top = os.path.dirname(importlib.import_module(pkg).__file__)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in filenames:
                if name.endswith(COMPILED):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, os.path.dirname(top)).replace(os.sep, "/")
                with open(path, "rb") as fh:
                    files[rel] = fh.read()
    return files


def _dist_files(dist) -> dict[str, bytes]:
    files = {}
    if dist.files is None:
        raise BundleError(f"{dist.metadata['Name']} has no RECORD of its files; reinstall it with pip")
    for entry in dist.files:
        rel = str(entry).replace(os.sep, "/")
        parts = rel.split("/")
        if rel.startswith("..") or "__pycache__" in parts or rel.endswith(COMPILED):
            continue  # scripts outside site-packages, caches, compiled extensions
        if parts[0].endswith(".dist-info") and parts[-1] in SKIP_DIST_INFO:
            continue
        if parts[0].endswith(".pth") or parts[0].startswith("__editable__"):
            continue
        files[rel] = entry.read_binary()
    return files


def collect() -> tuple[dict[str, bytes], dict]:
    """Every member of the bundle (path -> bytes) and its manifest."""
    dists = _closure()
    files: dict[str, bytes] = {}
    carried = []
    floor = FLOOR
    for dist in dists:
        name = dist.metadata["Name"]
        if _norm(name) == DIST:
            own = _own_files()
            meta = {k: v for k, v in _dist_files(dist).items() if k.split("/")[0].endswith(".dist-info")}
            files.update(own)
            files.update(meta)
        else:
            files.update(_dist_files(dist))
        low = _min_python(dist.metadata.get("Requires-Python"))
        carried.append({"name": name, "version": dist.version,
                        "requires_python": dist.metadata.get("Requires-Python") or ""})
        floor = max(floor, low)
    # the entry point: app/bundle_main.py, at the archive's root
    files["__main__.py"] = files["app/bundle_main.py"]
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    manifest = {"kvmprep": next(d.version for d in dists if _norm(d.metadata["Name"]) == DIST),
                "python": ".".join(map(str, floor)), "distributions": carried,
                "digest": digest.hexdigest()}
    files["kvmprep_bundle.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files, manifest


def build(output: str) -> dict:
    """Write the bundle to ``output`` (atomically) and return its manifest.
    Run from a bundle, the bundle copies itself: those are the same bytes."""
    from remediations.relaunch import bundle_path

    running = bundle_path()
    if running:
        with open(running, "rb") as fh:
            data = fh.read()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            manifest = json.loads(zf.read("kvmprep_bundle.json"))
    else:
        files, manifest = collect()
        buf = io.BytesIO()
        buf.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.create_system = 3  # Unix, whatever system builds it
                zf.writestr(info, files[name], compresslevel=9)
        data = buf.getvalue()
    directory = os.path.dirname(os.path.abspath(output))
    tmp = os.path.join(directory, f".{os.path.basename(output)}.kvmprep-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    manifest["bytes"] = len(data)
    return manifest


def cmd_bundle(args) -> int:
    try:
        manifest = build(args.output)
    except BundleError as exc:
        print(f"kvmprep: cannot bundle: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kvmprep: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    dists = ", ".join(f"{d['name']} {d['version']}" for d in manifest["distributions"] if _norm(d["name"]) != DIST)
    size = manifest["bytes"] / 1e6
    print(f"wrote {args.output} ({size:.1f} MB): kvmprep {manifest['kvmprep']} with {dists}")
    print(f"runs with Python {manifest['python']} or newer: copy it to the server, then run "
          f"python3 {os.path.basename(args.output)} (as root to fix)")
    if tuple(int(p) for p in manifest["python"].split(".")) > FLOOR:
        raising = [f"{d['name']} {d['version']} ({d['requires_python']})" for d in manifest["distributions"]
                   if _min_python(d["requires_python"]) > FLOOR]
        print(f"note: Python {'.'.join(map(str, FLOOR))} cannot run it, because of " + ", ".join(raising)
              + "; bundle from a Python 3.9 install of kvmprep for EL9 and Debian 11", file=sys.stderr)
    return 0
