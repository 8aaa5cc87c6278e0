"""A terminal's end of a serial line: this program's terminal <-> a unix socket.

QEMU puts the VM's ttyS0 on a unix socket (``-chardev socket``). Run in a
tmux pane (tests/terminal.py), this relays the pane's keys to the socket and
the socket's bytes to the pane unchanged, byte for byte, so tmux draws what a
serial console (or a BMC's serial-over-LAN) would show. ``python3
serial_relay.py SOCKET``; ends when the socket closes.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty


def relay(path: str) -> int:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in) if os.isatty(fd_in) else None
    if saved is not None:
        tty.setraw(fd_in)  # keys go to the line as typed (Ctrl-C too), no local echo
    try:
        while True:
            ready, _, _ = select.select([sock, fd_in], [], [])
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return 0
                os.write(fd_out, data)
            if fd_in in ready:
                data = os.read(fd_in, 4096)
                if not data:
                    return 0
                sock.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(relay(sys.argv[1]))
