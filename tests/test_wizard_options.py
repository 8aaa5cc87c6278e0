"""How the wizard adapts to its terminal (app/wizard_state.WizardOptions.detect):
ASCII on the Linux console, on serial lines and on VT-family terminals; a low
frame rate where every byte crosses a serial line. (The lab drives the real
ttyS0 of a VM: tests/lab/test_lab_serial.py.)"""

from __future__ import annotations

import pytest

from app.wizard_state import WizardOptions


@pytest.mark.parametrize("term, tty, ascii, slow, console_only", [
    ("xterm-256color", "/dev/pts/3", False, False, False),  # an SSH session from a desktop
    ("linux", "/dev/tty1", True, True, True),  # the local console: ASCII, 20 frames/s
    ("vt220", "/dev/ttyS0", True, True, False),  # a serial console (agetty's default TERM)
    ("linux", "/dev/ttyS0", True, True, False),  # TERM=linux on a serial line is still a serial line
    ("xterm", "/dev/ttyS1", True, True, False),  # a BMC's serial-over-LAN with TERM set to xterm
    ("vt100", "/dev/pts/0", True, False, False),  # a VT terminal over SSH: ASCII, normal speed
    ("vt102", "/dev/ttyUSB0", True, True, False),
    ("xterm", "/dev/hvc0", True, True, False),  # a hypervisor console
    ("ansi", "/dev/pts/1", True, False, False),
    ("vt220-8bit", "/dev/pts/1", True, False, False),
    ("vte-256color", "/dev/pts/2", False, False, False),  # GNOME's terminals draw UTF-8
    ("", "", True, False, False),  # no TERM, no terminal
])
def test_ascii_and_speed_follow_the_terminal(term, tty, ascii, slow, console_only):
    o = WizardOptions.detect(env={"TERM": term}, tty=tty)
    assert (o.ascii, o.slow, o.console_only) == (ascii, slow, console_only)


def test_flags_only_add():
    o = WizardOptions.detect(ascii=True, slow=True, env={"TERM": "xterm-256color"}, tty="/dev/pts/0")
    assert (o.ascii, o.slow, o.console_only) == (True, True, False)
