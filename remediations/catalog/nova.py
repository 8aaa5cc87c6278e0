"""OpenStack Nova: [libvirt] virt_type = kvm and a valid cpu_mode for nova-compute.

Only the keys that are wrong are changed, in the file whose value wins
(oslo.config reads RDO's nova-dist.conf, nova.conf, nova-compute.conf, then
nova.conf.d/*.conf; the last value wins). A packaged default under /usr/share
is overridden from nova.conf instead of being edited. Every other line,
comment and the order are kept; a key that is absent goes right after its
commented-out sample line when there is one, else at the end of [libvirt].

nova-compute is not restarted: it reads its configuration only at start, and
a restart in the middle of an instance operation (boot, migration) makes it
fail, so when to restart is left to the operator (a note gives the command).
"""

from __future__ import annotations

import re

from checks.catalog import openstack as nova_check
from checks.units import unit_path

from ..helpers import check_ctx, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation

SECTION = "libvirt"
_HEADER = re.compile(r"^[ \t]*\[([^\]]*)\][ \t]*$")


def set_ini_keys(text: str, section: str, values: dict[str, str]) -> str:
    """``text`` with ``key = value`` set in every ``[section]`` that has the key, or added to
    the last such section (after the commented sample line of the key if there is one), or
    in a new section at the end. Nothing else changes."""
    lines = text.splitlines(keepends=True)

    def sections() -> list[tuple[int, int]]:
        out, start = [], None
        for i, line in enumerate(lines):
            m = _HEADER.match(line.rstrip("\r\n"))
            if m:
                if start is not None:
                    out.append((start, i))
                start = i if m.group(1).strip().lower() == section.lower() else None
        if start is not None:
            out.append((start, len(lines)))
        return out

    for key, value in values.items():
        rx = re.compile(r"^([ \t]*" + re.escape(key) + r"[ \t]*[=:][ \t]*)(.*?)([ \t]*)$", re.I)
        found = False
        ranges = sections()
        for start, end in ranges:
            for i in range(start + 1, end):
                body = lines[i].rstrip("\r\n")
                m = rx.match(body)
                if m:
                    lines[i] = m.group(1) + value + m.group(3) + lines[i][len(body):]
                    found = True
        if found:
            continue
        new = f"{key} = {value}\n"
        if ranges:
            start, end = ranges[-1]
            sample = re.compile(r"^[ \t]*[#;][ \t]*" + re.escape(key) + r"[ \t]*[=:]", re.I)
            at = next((i + 1 for i in range(end - 1, start, -1) if sample.match(lines[i])), None)
            if at is None:
                at = next((i + 1 for i in range(end - 1, start, -1) if lines[i].strip()), start + 1)
            if not lines[at - 1].endswith("\n"):
                lines[at - 1] += "\n"
            lines.insert(at, new)
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            if lines and lines[-1].strip():
                lines.append("\n")
            lines += [f"[{section}]\n", new]
    return "".join(lines)


@remediation(
    "configure-nova",
    title="Make nova-compute use KVM with a host CPU model",
    fixes=("openstack.nova-conf",),
    description="Set [libvirt] virt_type = kvm and a valid cpu_mode (host-passthrough when the profile wants "
                "nested guests, else host-model; valid values are kept) in /etc/nova/nova.conf or the file "
                "that overrides it, changing only those keys. nova-compute must be restarted to read them.",
)
def configure_nova(ctx: PlanCtx) -> Proposal:
    cctx = check_ctx(ctx, "openstack.nova-conf")
    host = ctx.host
    main = nova_check.NOVA_CONF
    if not host.exists(main) and host.exists(nova_check._KOLLA):
        main = nova_check._KOLLA
    if not host.exists(main):
        return nothing(f"no {host.display(nova_check.NOVA_CONF)}: install nova-compute first (its package "
                       "writes the file kvmprep would edit)")
    files = [p for p in nova_check._BEFORE if host.exists(p)] + [main]
    if main == nova_check.NOVA_CONF:
        files += [p for p in nova_check._AFTER if host.exists(p)] + host.glob(nova_check._CONF_DIR, "*.conf")
    texts: dict[str, str] = {}
    values: dict[str, tuple[str, str]] = {}
    for path in files:
        text = text_for_edit(ctx, path)
        if text is None:
            continue
        texts[path] = text
        try:
            parsed = nova_check._parse(text, path)
        except nova_check._ParseError as exc:
            return nothing(f"{host.display(path)} does not parse ({exc}): fix it by hand first; kvmprep edits "
                           "only files it can read")
        for (sec, key), v in parsed.items():
            if sec == SECTION:
                values[key] = (v, path)

    def target(src: str | None) -> str:
        """The file to set a key in: where its winning value is, unless that is a packaged default."""
        return main if src is None or src in nova_check._BEFORE else src

    changes: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    vt, vt_src = values.get("virt_type", (None, None))
    if vt is not None and vt.lower() != "kvm":
        changes.setdefault(target(vt_src), {})["virt_type"] = "kvm"
    nested = bool(cctx.params["nested"])
    mode, mode_src = values.get("cpu_mode", (None, None))
    if mode is not None and mode.lower() not in nova_check._CPU_MODES:
        changes.setdefault(target(mode_src), {})["cpu_mode"] = "host-passthrough" if nested else "host-model"
    elif mode is not None and mode.lower() == "custom":
        models = values.get("cpu_models", values.get("cpu_model", ("", None)))[0]
        if not models.strip():
            notes.append("cpu_mode = custom without cpu_models: kvmprep cannot pick a CPU model for you; set "
                         "cpu_models to one from 'virsh cpu-models x86_64' or use host-model")
        elif nested:
            cpu = ctx.facts.cpu
            flag = "svm" if ("svm" in cpu.flags or cpu.vendor in ("amd", "hygon")) else "vmx"
            extra, extra_src = values.get("cpu_model_extra_flags", ("", None))
            flags = [f.lstrip("+") for f in nova_check._flags(extra or "") if not f.startswith("-")]
            if not {"vmx", "svm"} & set(flags):
                changes.setdefault(target(extra_src), {})["cpu_model_extra_flags"] = \
                    f"{extra.strip()}, {flag}" if extra and extra.strip() else flag
    actions = []
    for path, keys in changes.items():
        action = write_file(ctx, path, set_ini_keys(texts[path], SECTION, keys),
                            why="[libvirt] " + ", ".join(f"{k} = {v}" for k, v in keys.items())
                                + ": guests run on KVM with a CPU model libvirt can give them")
        if action:
            actions.append(action)
    if not actions:
        return nothing("; ".join(notes) or "[libvirt] virt_type and cpu_mode are already right "
                       "(unset keys mean Nova's defaults: kvm, host-model)")
    service = "openstack-nova-compute" if ctx.facts.os.family == "rhel" else "nova-compute"
    if main == nova_check._KOLLA:
        notes.append("kolla-ansible: the container reads this file when it starts: `docker restart nova_compute`, "
                     "and put the same settings in your kolla config overrides or the next deploy rewrites them")
    elif host.live and unit_path(host, f"{service}.service"):
        notes.append(f"nova-compute reads its configuration only when it starts: run `systemctl restart {service}` "
                     "when no instance is being built or migrated (running guests are not affected); kvmprep "
                     "does not restart it")
    else:
        notes.append(f"the new settings apply when {service} starts")
    notes.append("if a deployment tool (kolla-ansible, OpenStack-Ansible, TripleO, Juju, Puppet) manages nova.conf, "
                 "set the same values there as well")
    return Proposal(actions=actions, notes=notes)
