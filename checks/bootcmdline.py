"""The kernel command line a root's next boot gets, read from its boot loader
configuration: one reader for the checks (kvm.nested, security.selinux,
iommu.kernel) and the remediations that change it.

* /etc/kernel/cmdline (systemd-boot, kernel-install);
* GRUB's settings: /etc/default/grub then /etc/default/grub.d/*.cfg,
  GRUB_CMDLINE_LINUX + GRUB_CMDLINE_LINUX_DEFAULT (``$GRUB_CMDLINE_LINUX``
  references expanded);
* boot loader spec entries (/boot/loader/entries, what grubby edits) with
  ``$var`` (``$kernelopts`` on EL8) expanded from grubenv;
* the ``linux`` lines of a generated grub.cfg.
"""

from __future__ import annotations

import shlex

from .host import Host

GRUB_DEFAULT = "/etc/default/grub"
GRUB_D = "/etc/default/grub.d"
GRUB_CFGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
GRUBENVS = ("/boot/grub2/grubenv", "/boot/grub/grubenv")
BLS_ENTRIES = "/boot/loader/entries"


def _norm(name: str) -> str:
    return name.replace("-", "_")


def cmdline_value(tokens: list[str], name: str) -> str | None:
    """Last ``name=value`` among kernel arguments ('' for a bare flag); '-'/'_' alike."""
    value = None
    want = _norm(name)
    for tok in tokens:
        if tok == "--":
            break
        key, sep, val = tok.partition("=")
        if _norm(key) == want:
            value = val if sep else ""
    return value


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:  # unbalanced quotes: split on blanks
        return text.split()


def grub_cmdline(host: Host) -> tuple[list[str], str] | None:
    """GRUB's settings as kernel arguments, and the files they came from."""
    files = [GRUB_DEFAULT] + sorted(host.glob(GRUB_D, "*.cfg"))
    found: dict[str, list[str]] = {}
    shown: list[str] = []
    for path in files:
        text = host.read_text(path)
        if text is None:
            continue
        for line in text.splitlines():
            line = line.strip()
            for key in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"):
                if line.startswith(key + "="):
                    ref = "$" + key
                    tokens: list[str] = []
                    for w in _split(line[len(key) + 1:]):
                        for part in w.split():
                            if part in (ref, "${" + key + "}"):  # "$GRUB_CMDLINE_LINUX foo" appends
                                tokens.extend(found.get(key, []))
                            else:
                                tokens.append(part)
                    found[key] = tokens
                    if host.display(path) not in shown:
                        shown.append(host.display(path))
    if not found:
        return None
    return found.get("GRUB_CMDLINE_LINUX", []) + found.get("GRUB_CMDLINE_LINUX_DEFAULT", []), ", ".join(shown)


def grubenv(host: Host) -> dict[str, str]:
    """GRUB's environment block (kernelopts=, tuned_params=...), grub2 first."""
    env: dict[str, str] = {}
    for p in GRUBENVS:
        for line in (host.read_text(p) or "").splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() and not k.startswith("#"):
                env.setdefault(k.strip(), v)
    return env


def bls_cmdlines(host: Host, skip_rescue: bool = False) -> list[list[str]]:
    """Kernel arguments of every boot loader spec entry ($var from grubenv), sorted by file."""
    env = None
    out = []
    for p in sorted(host.glob(BLS_ENTRIES, "*.conf")):
        if skip_rescue and "rescue" in p:
            continue
        for line in (host.read_text(p) or "").splitlines():
            words = line.split()
            if words and words[0] == "options":
                if env is None:
                    env = grubenv(host)
                toks: list[str] = []
                for w in words[1:]:
                    toks += env.get(w[1:], "").split() if w.startswith("$") else [w]
                out.append(toks)
    return out


def menu_cmdlines(host: Host) -> list[list[str]]:
    """Kernel arguments of the linux lines of the generated grub.cfg."""
    out = []
    for p in GRUB_CFGS:
        for line in (host.read_text(p) or "").splitlines():
            words = line.split()
            if words and words[0] in ("linux", "linux16", "linuxefi"):
                out.append(words[2:])
        if out:
            break
    return out


def next_boot_value(host: Host, running: list[str], name: str) -> tuple[str | None, str]:
    """The value of kernel argument ``name`` at the next boot, and where it was read.

    Boot loader configuration (/etc/kernel/cmdline, GRUB's settings) when it
    mentions the argument; otherwise the running command line (assumed to be
    booted again).
    """
    text = host.read_text("/etc/kernel/cmdline")
    if text:
        value = cmdline_value(text.split(), name)
        if value is not None:
            return value, host.display("/etc/kernel/cmdline")
    grub = grub_cmdline(host)
    if grub:
        value = cmdline_value(grub[0], name)
        if value is not None:
            return value, grub[1]
    return cmdline_value(running, name), host.display("/proc/cmdline")
