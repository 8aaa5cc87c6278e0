"""Throwaway roots and small Pilot helpers for the wizard's tests.

The roots are the fix tests' Debian 12 root (tests/test_fix_done_when.build):
a real dpkg database and an apt sources.list pointing at a stub repository
built once per session (tests/pkgroots.py), /proc/cpuinfo, lib/modules with a
depmod index and an enforcing SELinux config. With SITE_PROFILE (generic,
SELinux wanted disabled) the plan has package installs AND a file diff.

Import textual only through the app: ``build_app`` does it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pkgroots import repo_without
from test_fix_done_when import build

SITE_PROFILE = ("name: site\nextends: generic\n"
                "checks:\n  security.selinux: {severity: required, want: disabled}\n")


def debian_wizard_root(path: Path, deb_repo: Path, without: tuple[str, ...] = ()) -> Path:
    """A Debian 12 root whose apt source is the stub repository (minus ``without``:
    an install of those must fail)."""
    path = Path(path)
    repo = deb_repo
    if without:
        repo = repo_without(deb_repo, path.parent / f"{path.name}-repo", without)
    return build("debian", path, None, repo)


def site_profile(directory: Path) -> str:
    f = Path(directory) / "site.yaml"
    f.write_text(SITE_PROFILE)
    return str(f)


def make_app(root: Path, profile: str | None = None, euid: int = 0, answers=None):
    """The wizard on ``root``; what it saves (report, answers) goes to
    ``<root>-output`` beside the root (KVMPREP_OUTPUT_DIR), never to this
    machine's /var/log."""
    from app.tui import build_app
    from app.wizard_state import WizardOptions

    out = Path(root).parent / f"{Path(root).name}-output"
    return build_app(WizardOptions(root=str(root), profile=profile, ascii=False, slow=False,
                                   euid=euid, env={"KVMPREP_OUTPUT_DIR": str(out)}, answers=answers))


def tree_state(root: Path) -> dict[str, bytes | str]:
    """Every path under the root with its content (or link target): to prove nothing was written."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as fh:
                    out[rel] = fh.read()
    return out


def plain(widget) -> str:
    """The text a Static shows (Text, Syntax or str content)."""
    content = widget.content
    for attr in ("plain", "code"):
        if hasattr(content, attr):
            return getattr(content, attr)
    return str(content)


def screen_text(app) -> str:
    """The whole visible screen as text, modals over their background: what the terminal shows
    (App.export_screenshot's rendering, exported as text instead of SVG)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_for(pilot, condition, timeout: float = 20.0, what: str = "condition", step: float = 0.05):
    """Poll ``condition()`` between frames until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"screen is {type(pilot.app.screen).__name__}:\n{screen_text(pilot.app)}")
        await pilot.pause(step)


async def wait_screen(pilot, name: str, timeout: float = 20.0):
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == name, timeout, f"the {name}")
    await pilot.pause()
    return pilot.app.screen


async def wait_text(pilot, needle: str, timeout: float = 10.0) -> str:
    """Poll the visible screen until it shows ``needle`` (a modal lays out a frame after it opens)."""
    found = await wait_for(pilot, lambda: needle in (t := screen_text(pilot.app)) and t, timeout,
                           f"the screen to show {needle!r}")
    return found


def kill_apply(app) -> None:
    """If a test ends while the detached apply it started still runs, stop that one process."""
    screen = next((s for s in app.screen_stack if type(s).__name__ == "ApplyScreen"), None)
    proc = getattr(screen, "proc", None)
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the apply and its apt-get
        proc.wait(timeout=10)


__all__ = ["SITE_PROFILE", "debian_wizard_root", "site_profile", "make_app", "tree_state", "plain",
           "screen_text", "wait_for", "wait_screen", "wait_text", "kill_apply"]
