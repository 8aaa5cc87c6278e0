"""Fleet checks: requirements that only many hosts' reports together can decide.

A platform cluster needs more than ready hosts: the same kernel everywhere
(Deckhouse), CPUs a live-migrating guest finds on every host, QEMU/libvirt that
do not go backwards, names and addresses that are not clones of one another.
``kvmprep fleet`` reads the JSON reports ``kvmprep check --format json`` wrote
on each host (collected by Ansible, scp, anything) and decides those here.

Everything in this package is a pure function of the parsed reports: no
reads of the machine it runs on, no UI (``app/fleet_view.py`` draws the table).
Reports come from other machines, so ``report.load_report`` validates every
field it uses before anything else looks at it.
"""

from __future__ import annotations

from .engine import FleetReport, run_fleet
from .report import BadReport, HostReport, load_report, load_reports

__all__ = ["BadReport", "FleetReport", "HostReport", "load_report", "load_reports", "run_fleet"]
