"""Boot-time module configuration of a root, read the way kmod and systemd do.

* modprobe.d: ``options``/``blacklist``/``install`` lines from ``*.conf``
  files in /etc/modprobe.d, /run/modprobe.d, /usr/local/lib/modprobe.d,
  /usr/lib/modprobe.d, /lib/modprobe.d. A file name in an earlier directory
  hides the same name in a later one; the surviving files are read in name
  order, so a later file's option wins. ``-`` and ``_`` are interchangeable
  in module and parameter names.
* modules-load.d: module names listed for loading at boot (plus Debian's
  /etc/modules).
* the kernel command line of the next boot lives in checks/bootcmdline.py.
"""

from __future__ import annotations

import shlex

from .host import Host
from .record import FrozenRecord, Record

MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                 "/usr/lib/modprobe.d", "/lib/modprobe.d")
MODULES_LOAD_DIRS = ("/etc/modules-load.d", "/run/modules-load.d", "/usr/local/lib/modules-load.d",
                     "/usr/lib/modules-load.d", "/lib/modules-load.d")

_TRUE = {"y", "yes", "1", "on", "true"}
_FALSE = {"n", "no", "0", "off", "false"}


def norm(name: str) -> str:
    return name.replace("-", "_")


def truthy(value: str | None) -> bool | None:
    """A kernel boolean/int parameter as True/False; None when not one."""
    if value is None:
        return None
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


class ModOption(FrozenRecord):
    def __init__(self, module: str, param: str, value: str, file: str, line: str):
        # file: host path of the file that sets it; line: the line as written
        self._fields(module=module, param=param, value=value, file=file, line=line)

    def describe(self) -> str:
        return f"'{self.line}' in {self.file}"


class ModprobeConfig(Record):
    def __init__(self, files: list[str] | None = None, options: list[ModOption] | None = None,
                 blacklist: dict[str, str] | None = None, install: dict[str, tuple[str, str]] | None = None):
        self.files = [] if files is None else files  # effective files, in reading order
        self.options = [] if options is None else options
        self.blacklist = {} if blacklist is None else blacklist  # module -> file
        self.install = {} if install is None else install  # module -> (command, file)

    def option(self, module: str, param: str) -> ModOption | None:
        """The value modprobe passes for module.param (the last one read wins)."""
        found = None
        module, param = norm(module), norm(param)
        for opt in self.options:
            if opt.module == module and opt.param == param:
                found = opt
        return found


def effective_conf_files(host: Host, dirs, suffix: str = ".conf") -> list[str]:
    """Files of a drop-in directory set: earlier dirs mask same names; sorted by name."""
    chosen: dict[str, str] = {}
    for d in dirs:
        for path in host.glob(d, f"*{suffix}"):
            name = path.rsplit("/", 1)[1]
            if name not in chosen:
                chosen[name] = path
    return [chosen[n] for n in sorted(chosen)]


def _logical_lines(text: str):
    """Lines with comments removed and backslash continuations joined."""
    buf = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = buf + line, ""
        line = line.strip()
        if line and not line.startswith("#"):
            yield line
    if buf.strip() and not buf.strip().startswith("#"):
        yield buf.strip()


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:  # unbalanced quotes: split on blanks
        return text.split()


def parse_modprobe_text(text: str, path: str, into: ModprobeConfig) -> None:
    for line in _logical_lines(text):
        words = line.split(None, 2)
        if not words:
            continue
        cmd = words[0]
        if cmd == "options" and len(words) >= 3:
            module = norm(words[1])
            for tok in _split(words[2]):
                key, sep, val = tok.partition("=")
                if key:
                    into.options.append(ModOption(module, norm(key), val if sep else "", path, line))
        elif cmd == "blacklist" and len(words) >= 2:
            into.blacklist[norm(words[1])] = path
        elif cmd == "install" and len(words) >= 3:
            into.install[norm(words[1])] = (words[2], path)


def read_modprobe_config(host: Host) -> ModprobeConfig:
    def compute():
        cfg = ModprobeConfig()
        for path in effective_conf_files(host, MODPROBE_DIRS):
            text = host.read_text(path)
            if text is None:
                continue
            cfg.files.append(path)
            parse_modprobe_text(text, host.display(path), cfg)
        return cfg
    return host.memo(("modprobe.d",), compute)


def boot_modules(host: Host) -> dict[str, str]:
    """Modules listed for loading at boot -> the (displayed) file listing them."""
    def compute():
        out: dict[str, str] = {}
        files = effective_conf_files(host, MODULES_LOAD_DIRS)
        seen = set()
        for path in files + ["/etc/modules"]:
            try:
                real = str(host.path(path))
            except Exception:
                real = path
            if real in seen:
                continue  # Debian: /etc/modules-load.d/modules.conf -> ../modules
            seen.add(real)
            text = host.read_text(path)
            if text is None:
                continue
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if not line or line.startswith(";"):
                    continue
                name = norm(line.split()[0])
                out.setdefault(name, host.display(path))
        return out
    return host.memo(("modules-load.d",), compute)

