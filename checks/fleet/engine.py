"""Run the fleet checks a profile asks for over the hosts' reports; the verdict.

The fleet is ready when every host's own report says ready and no fleet check
fails. A fleet check's severity comes from the profile's ``fleet:`` section:
``required`` keeps a failure a failure, ``recommended``/``info`` turn it into a
warning (as a host check's severity decides whether its failure blocks).
"""

from __future__ import annotations

from .. import REPORT_FORMAT, __version__
from ..profile import Profile
from ..record import Record
from . import cpu, identity, versions
from .report import HostReport
from .result import FleetResult

# id -> (title, check), in the order of the output; a title fits the table's
# 80 columns after the id (44 characters)
FLEET_CHECKS = {
    "fleet.same-kernel": ("The same kernel release on every host", identity.same_kernel),
    "fleet.cpu-compatible": ("CPUs a live-migrating guest finds everywhere", cpu.cpu_compatible),
    "fleet.versions": ("QEMU/libvirt versions guests can migrate to", versions.versions),
    "fleet.unique-names": ("Every host has its own hostname", identity.unique_names),
    "fleet.unique-addresses": ("Every host has its own addresses", identity.unique_addresses),
    "fleet.unique-machine-ids": ("Every host has its own machine id", identity.unique_machine_ids),
}


class FleetReport(Record):
    def __init__(self, hosts: list[HostReport], profile: Profile, profile_origin: str,
                 results: list[FleetResult], notes: list[str]):
        self.hosts = hosts
        self.profile = profile
        self.profile_origin = profile_origin  # "given", "the reports'", "default"
        self.results = results
        self.notes = notes

    @property
    def not_ready(self) -> list[HostReport]:
        return [h for h in self.hosts if not h.ready]

    @property
    def failing(self) -> list[FleetResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ready(self) -> bool:
        return not self.not_ready and not self.failing

    def check_ids(self) -> list[str]:
        """Every host check any report ran, in the reports' order."""
        ids: dict[str, None] = {}
        for h in self.hosts:
            ids.update(dict.fromkeys(h.statuses))
        return list(ids)

    def matrix(self) -> tuple[list[str], list[tuple[HostReport, list[str | None]]]]:
        """(check ids, per host its status of each, None where it did not run)."""
        ids = self.check_ids()
        return ids, [(h, [h.statuses.get(cid) for cid in ids]) for h in self.hosts]

    def summary(self) -> dict:
        counts = {"pass": 0, "warn": 0, "fail": 0}
        for r in self.results:
            counts[r.status] += 1
        return {"hosts": len(self.hosts), "ready_hosts": len(self.hosts) - len(self.not_ready),
                "not_ready": [h.name for h in self.not_ready], "fleet": counts,
                "blocking": [r.id for r in self.failing], "ready": self.ready}

    def to_document(self) -> dict:
        ids, rows = self.matrix()
        return {
            "format": REPORT_FORMAT,
            "tool": {"name": "kvmprep", "version": __version__},
            "kind": "fleet",
            "profile": {"name": self.profile.name, "file": self.profile.file, "chosen": self.profile_origin},
            "notes": self.notes,
            "hosts": [{"name": h.name, "file": h.file, "hostname": h.hostname, "profile": h.profile,
                       "ready": h.ready, "blocking": h.blocking, "kernel": h.kernel,
                       "unreadable": h.unreadable} for h in self.hosts],
            "fleet": [r.to_dict() for r in self.results],
            "matrix": {"checks": ids,
                       "rows": [{"host": h.name, "statuses": statuses} for h, statuses in rows]},
            "summary": self.summary(),
        }


def run_fleet(hosts: list[HostReport], profile: Profile, profile_origin: str = "given") -> FleetReport:
    results = []
    for fid, (title, check) in FLEET_CHECKS.items():
        severity = profile.fleet.get(fid)
        if severity is None:
            continue  # off in this profile
        result = check(hosts)
        result.title, result.severity = title, severity
        if result.status == "fail" and severity != "required":
            result.status = "warn"
        results.append(result)
    notes = []
    used = {h.profile for h in hosts}
    if len(used) > 1:
        notes.append("the hosts were checked with different profiles: " +
                     ", ".join(sorted(str(p) for p in used)))
    elif used and next(iter(used)) != profile.name:
        notes.append(f"the hosts were checked with profile {next(iter(used))}; the fleet checks use "
                     f"{profile.name} (each host's READY is its own report's)")
    return FleetReport(hosts, profile, profile_origin, results, notes)
