"""The kernel's NTP state, read with adjtimex(2) (modes = 0: read only).

This is what ``timedatectl``'s "System clock synchronized" reports: the
clock is unsynchronised when adjtimex returns TIME_ERROR or the status has
STA_UNSYNC. Reading needs no privilege; it describes the running kernel only.
"""

from __future__ import annotations

import ctypes

from .record import FrozenRecord

TIME_OK, TIME_INS, TIME_DEL, TIME_OOP, TIME_WAIT, TIME_ERROR = range(6)
STA_PLL = 0x0001
STA_UNSYNC = 0x0040
STA_NANO = 0x2000

_STATES = {TIME_OK: "TIME_OK", TIME_INS: "TIME_INS", TIME_DEL: "TIME_DEL",
           TIME_OOP: "TIME_OOP", TIME_WAIT: "TIME_WAIT", TIME_ERROR: "TIME_ERROR"}


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux, native long size)
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


class ClockState(FrozenRecord):
    def __init__(self, synchronized: bool | None, state: int | None = None, status: int | None = None,
                 maxerror_us: int | None = None, esterror_us: int | None = None, error: str | None = None):
        # synchronized None: adjtimex could not be called
        self._fields(synchronized=synchronized, state=state, status=status, maxerror_us=maxerror_us,
                     esterror_us=esterror_us, error=error)

    @property
    def summary(self) -> str:
        if self.state is None:
            return f"adjtimex unavailable: {self.error}"
        flags = []
        if self.status & STA_UNSYNC:
            flags.append("STA_UNSYNC")
        if self.status & STA_PLL:
            flags.append("STA_PLL")
        name = _STATES.get(self.state, str(self.state))
        return (f"returned {name}, status {self.status:#06x}"
                f"{' (' + ', '.join(flags) + ')' if flags else ''}, "
                f"maxerror {self.maxerror_us} us, esterror {self.esterror_us} us")


def read_clock_state() -> ClockState:
    """adjtimex(2) with modes = 0 on the running kernel."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.adjtimex
    except (OSError, AttributeError) as exc:
        return ClockState(None, error=f"no adjtimex in the C library ({exc})")
    func.argtypes = [ctypes.POINTER(_Timex)]
    func.restype = ctypes.c_int
    tx = _Timex()
    tx.modes = 0
    ret = func(ctypes.byref(tx))
    if ret < 0:
        import os

        err = ctypes.get_errno()
        return ClockState(None, error=os.strerror(err) if err else f"returned {ret}")
    synced = ret != TIME_ERROR and not (tx.status & STA_UNSYNC)
    return ClockState(synced, ret, tx.status, tx.maxerror, tx.esterror)
