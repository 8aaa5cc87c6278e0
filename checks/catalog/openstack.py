"""OpenStack: nova-compute's libvirt settings."""

from __future__ import annotations


from ..model import failed, passed
from ..registry import Ctx, check

NOVA_CONF = "/etc/nova/nova.conf"
# Read in this order, later files override earlier ones (oslo.config semantics):
# RDO's packaged defaults, the admin's file, Ubuntu's nova-compute-kvm file, a config dir.
_BEFORE = ("/usr/share/nova/nova-dist.conf",)
_AFTER = ("/etc/nova/nova-compute.conf",)
_CONF_DIR = "/etc/nova/nova.conf.d"
_KOLLA = "/etc/kolla/nova-compute/nova.conf"

_CPU_MODES = ("host-passthrough", "host-model", "custom")


class _ParseError(Exception):
    pass


def _parse(text: str, name: str) -> dict[tuple[str, str], str]:
    """(section, key) -> value, like oslo.config: quotes stripped, last value wins, no inline comments."""
    import configparser  # only when there is a nova.conf to read

    cp = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False,
                                   default_section="\x00no-default-section")
    try:
        cp.read_string(text, source=name)
    except configparser.MissingSectionHeaderError as exc:
        raise _ParseError(f"line {exc.lineno}: {exc.line.strip()!r} is not inside a [section] "
                          "(or is a broken section header)") from exc
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0] if exc.errors else (0, "")
        raise _ParseError(f"line {lineno}: cannot parse {str(line).strip()!r}") from exc
    except configparser.Error as exc:
        raise _ParseError(str(exc).splitlines()[0]) from exc
    out = {}
    for section in cp.sections():
        for key, value in cp.items(section, raw=True):
            v = (value or "").strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            out[(section.lower(), key)] = v
    return out


def _flags(value: str) -> list[str]:
    return [f.strip().lower() for f in value.replace(" ", ",").split(",") if f.strip()]


@check(
    "openstack.nova-conf",
    title="nova-compute uses KVM with a host CPU model",
    why="With virt_type = qemu Nova runs guests in slow emulation; cpu_mode decides which CPU (and vmx/svm) guests see.",
    source="OpenStack Nova 'Configure KVM' guide ([libvirt] virt_type, cpu_mode, cpu_models, cpu_model_extra_flags)",
    remediations=("configure-nova",),
    root_reads="/etc/nova/nova.conf (mode 0640 root:nova)",
    params={"nested": False},
)
def nova_conf(ctx: Ctx):
    host = ctx.host
    main = NOVA_CONF
    if not host.exists(main) and host.exists(_KOLLA):
        main = _KOLLA  # kolla-ansible: the container's config lives on the host here
    if not host.exists(main):
        return failed(f"nova-compute is not configured (no {NOVA_CONF})", (ctx.show(NOVA_CONF), "missing"),
                      hint=f"install nova-compute and set in {NOVA_CONF}: [libvirt] virt_type = kvm, cpu_mode = host-model")
    files = [p for p in _BEFORE if host.exists(p)] + [main]
    if main == NOVA_CONF:
        files += [p for p in _AFTER if host.exists(p)] + host.glob(_CONF_DIR, "*.conf")
    values: dict[tuple[str, str], tuple[str, str]] = {}
    for path in files:
        text = host.read_text(path)
        if text is None:
            continue
        try:
            parsed = _parse(text, path)
        except _ParseError as exc:
            return failed(f"{ctx.show(path)} does not parse, {exc}: nova-compute would refuse to start",
                          (ctx.show(path), str(exc)),
                          hint=f"fix {str(exc).split(':', 1)[0]} of {path} (sections like [libvirt], lines key = value)")
        for k, v in parsed.items():
            values[k] = (v, path)

    def get(key: str) -> tuple[str | None, str | None]:
        v, src = values.get(("libvirt", key), (None, None))
        return v, src

    fam = ctx.facts.os.family
    service = "openstack-nova-compute" if fam == "rhel" else "nova-compute"
    ev, problems, lines = [], [], []

    virt_type, src = get("virt_type")
    if virt_type is None:
        ev.append((ctx.show(main), "[libvirt] virt_type unset: Nova defaults to kvm"))
        vt = "kvm"
    else:
        ev.append((ctx.show(src), f"[libvirt] virt_type = {virt_type}"))
        vt = virt_type.lower()
    if vt == "qemu":
        problems.append("virt_type = qemu means emulation (TCG): guests run without KVM, many times slower")
        lines.append("virt_type = kvm")
    elif vt != "kvm":
        problems.append(f"virt_type = {virt_type!r} is not kvm")
        lines.append("virt_type = kvm")

    cpu_mode, src = get("cpu_mode")
    if cpu_mode is None:
        ev.append((ctx.show(main), "[libvirt] cpu_mode unset: Nova defaults to host-model with kvm"))
        mode = "host-model" if vt in ("kvm", "qemu") else "none"
    else:
        ev.append((ctx.show(src), f"[libvirt] cpu_mode = {cpu_mode}"))
        mode = cpu_mode.lower()
    models, msrc = get("cpu_models")
    if models is None:
        models, msrc = get("cpu_model")  # the older single-model name
    extra, esrc = get("cpu_model_extra_flags")
    if models is not None:
        ev.append((ctx.show(msrc), f"[libvirt] cpu_models = {models}"))
    if extra is not None:
        ev.append((ctx.show(esrc), f"[libvirt] cpu_model_extra_flags = {extra}"))

    cpu = ctx.facts.cpu
    virt_flag = "svm" if ("svm" in cpu.flags or cpu.vendor in ("amd", "hygon")) else "vmx"
    if mode not in _CPU_MODES:
        problems.append(f"cpu_mode = {mode} (use host-passthrough, host-model or custom)")
        lines.append("cpu_mode = host-passthrough" if ctx.params["nested"] else "cpu_mode = host-model")
    elif mode == "custom" and not (models and models.strip()):
        problems.append("cpu_mode = custom without cpu_models")
        lines.append("cpu_models = <a model from 'virsh cpu-models x86_64'>")
    if ctx.params["nested"] and mode == "custom":
        flags = [f.lstrip("+") for f in _flags(extra or "") if not f.startswith("-")]
        if not {"vmx", "svm"} & set(flags):
            problems.append(f"nested guests need {virt_flag} in cpu_model_extra_flags with cpu_mode = custom")
            lines.append(f"cpu_model_extra_flags = {virt_flag}")

    if problems:
        return failed("; ".join(problems), *ev,
                      hint=f"set in [libvirt] of {NOVA_CONF}: {'; '.join(dict.fromkeys(lines))}; "
                           f"then systemctl restart {service}")
    detail = f"virt_type = {vt}, cpu_mode = {mode}"
    if mode == "custom":
        detail += f" ({models})"
    if ctx.params["nested"] and mode == "host-model":
        detail += f"; nested guests see {virt_flag} only if the host-model CPU includes it"
    return passed(detail, *ev)
