"""The wizard over ``ssh -t`` in tmux (tests/terminal.py), walked as an admin does."""

from __future__ import annotations

APPLY_TIMEOUT = 600  # the apply screen, apt included (one to two minutes here)


def to_the_apply(t) -> None:
    """Welcome, detection, results, fixes (the default selection), preview,
    confirm (y): the apply has started."""
    welcome = t.wait_text("1/8 Welcome", timeout=60)
    welcome = t.wait_for(lambda s: "generic" in s and "Host:" in s, "the host summary and profiles")
    assert "connected over SSH" in " ".join(t.settle().split()), welcome  # also under sudo
    t.keys("Enter")
    t.wait_for(lambda s: "3/8 Results" in s and "Enter Fixes" in s, "the results", timeout=120)
    t.keys("Enter")
    t.wait_for(lambda s: "4/8 Fixes" in s and "install-virtualization-packages" in s and "[x]" in s,
               "the fixes", timeout=60)
    fixes = t.settle()
    assert "[x]  add-user-to-groups" in fixes, fixes
    t.keys("Enter")
    t.wait_text("5/8 Preview")
    t.keys("Enter")
    t.wait_for(lambda s: "Apply " in s and "actions?" in s, "the confirmation")
    t.keys("y")
    t.wait_text("7/8 Apply")


def to_the_end(t) -> None:
    """The apply until it ends (DONE), the summary, quit."""
    done = t.wait_for(lambda s: "DONE: every action" in s or "FAILED" in s, "the apply to end", timeout=APPLY_TIMEOUT)
    assert "DONE: every action" in done, done
    t.keys("Enter")
    t.wait_text("8/8 Summary")
    t.keys("q")
    t.wait_text("Quit kvmprep?")
    t.keys("y")
    assert t.wait_exit(timeout=60) == "EXIT=0", t.capture(history=True)
    assert "Traceback" not in t.capture(history=True)

