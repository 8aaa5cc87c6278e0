"""Exceptions a probe raises; the runner turns each into one check's status."""

from __future__ import annotations


class ProbeError(Exception):
    """A read or command failed in a way the check could not interpret.

    Becomes status ``error`` for that check only, naming ``source``.
    """

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class NeedsRoot(Exception):
    """The answer is behind a permission the current user lacks.

    Becomes status ``skip`` with "needs root" and what would be read.
    """

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class ToolMissing(ProbeError):
    """A command the probe needs is not installed on the machine kvmprep runs on."""

    def __init__(self, tool: str):
        super().__init__(tool, f"{tool} is not installed on this machine")
        self.tool = tool
