"""The kernel command line of the next boots: one implementation for every remediation
that puts a kernel argument there (enable-nested, enable-iommu).

* Live root with grubby: ``grubby --update-kernel ALL --args name=value``
  (AddKernelArgs; every boot entry).
* Otherwise GRUB's settings: /etc/default/grub, then /etc/default/grub.d/*.cfg
  (read in that order; the last assignment wins). An existing ``name``
  (``name=...`` or bare; '-' and '_' alike, as the kernel reads them) in
  GRUB_CMDLINE_LINUX or GRUB_CMDLINE_LINUX_DEFAULT gets the new value where it
  is; otherwise ``name=value`` is appended inside the last GRUB_CMDLINE_LINUX
  (a new line in /etc/default/grub if there is none). Quoting and every other
  byte of every line are kept; a value with unbalanced quotes is not touched.
* The boot loader reads the generated menu, so a live root then regenerates it
  (update-grub, grub2-mkconfig or grub-mkconfig): a RunCommand undone by the
  same command with ``undo_at_end``, i.e. after undo has restored the settings.
  An offline root gets the file edit only and a note (this machine's tools
  must not regenerate another system's menu).

Reading: boot loader spec entries (what grubby edits, ``$var`` from grubenv),
the linux lines of the generated grub.cfg, and the argument's value at the next
boot (``boot_arg_value``).
"""

from __future__ import annotations

import re
import shlex
from typing import Callable, Optional

from checks import bootcmdline, names
from checks.bootcmdline import BLS_ENTRIES, GRUB_D, GRUB_DEFAULT, cmdline_value, next_boot_value

from .actions import AddKernelArgs, RunCommand
from .helpers import text_for_edit, write_file
from .registry import PlanCtx, Proposal, nothing

BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

# new value of an argument from its current one (None: absent, '' for a bare flag)
ValueFn = Callable[[Optional[str]], str]  # a runtime alias: no `X | None` on 3.9


def tool(ctx: PlanCtx, *names: str) -> str | None:
    """The first of ``names`` installed in the root's bin directories."""
    for name in names:
        if any(ctx.host.exists(f"{d}/{name}") for d in BIN_DIRS):
            return name
    return None


def has_grubby(ctx: PlanCtx) -> bool:
    return tool(ctx, "grubby") is not None


# ---- GRUB settings (/etc/default/grub, grub.d) ------------------------------------------

# GRUB_CMDLINE_LINUX= / GRUB_CMDLINE_LINUX_DEFAULT= assignments (optionally exported)
_ASSIGN = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>GRUB_CMDLINE_LINUX(?:_DEFAULT)?)="
                     r"(?P<rest>.*?)(?P<eol>\r?\n?)$", re.S)


class UnbalancedQuotes(ValueError):
    """A GRUB_CMDLINE_LINUX line kvmprep would have to edit but cannot parse."""

    def __init__(self, path: str, lineno: int):
        super().__init__(f"{path} line {lineno}: unbalanced quotes")
        self.path, self.lineno = path, lineno


def grub_files(ctx: PlanCtx) -> list[str]:
    """GRUB's settings in the order grub-mkconfig reads them."""
    return [GRUB_DEFAULT] + sorted(ctx.host.glob(GRUB_D, "*.cfg"))


def _split_value(rest: str) -> tuple[str, str, str, str]:
    """An assignment's right side -> (quote, content, closing quote, trailing text)."""
    if rest[:1] in ("'", '"'):
        q = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "\\" and q == '"':
                i += 2
                continue
            if rest[i] == q:
                return q, rest[1:i], q, rest[i + 1:]
            i += 1
        return q, rest[1:], "", ""  # unbalanced: leave the line alone (caller checks)
    m = re.match(r"(\S*)(.*)", rest, re.S)
    return "", m.group(1), "", m.group(2)


def arg_pattern(name: str) -> re.Pattern:
    """``name`` or ``name=value`` as a whole word of a (quoted) value; '-' and '_' alike."""
    spelled = "[-_]".join(re.escape(p) for p in re.split(r"[-_]", name))
    return re.compile(r"(?<![^\s\"'])" + spelled + r"(?:=(?P<val>[^\s\"']*))?(?![^\s\"'])")


def _value_fn(arg: str, value: ValueFn | None) -> tuple[str, ValueFn]:
    name, _, fixed = arg.partition("=")
    return name, value or (lambda _old: fixed)


def _replace_arg(line: str, rx: re.Pattern, name: str, value: ValueFn) -> str | None:
    """The assignment line with every ``name`` token set to its new value (quoting kept);
    None when its value does not name it (a trailing comment does not count)."""
    m = _ASSIGN.match(line)
    q, content, close, trail = _split_value(m.group("rest"))
    if not rx.search(content) or (q and not close):
        return None
    content = rx.sub(lambda t: f"{name}={value(t.group('val'))}", content)
    return f"{m.group('lead')}{m.group('key')}={q}{content}{close}{trail}{m.group('eol')}"


def _append_arg(line: str, arg: str) -> str | None:
    """The assignment line with ``arg`` appended inside its value (quoting kept);
    None when its quotes are unbalanced."""
    m = _ASSIGN.match(line)
    q, content, close, trail = _split_value(m.group("rest"))
    if q and not close:
        return None
    content = (content.rstrip() + " " + arg) if content.strip() else arg
    if not q:
        q = close = '"'  # the value now has a blank in it: it needs quotes
    return f"{m.group('lead')}{m.group('key')}={q}{content}{close}{trail}{m.group('eol')}"


def with_kernel_arg(texts: dict[str, str | None], arg: str, value: ValueFn | None = None) -> dict[str, str]:
    """GRUB settings files (path -> text or None when absent, in reading order, the first
    one /etc/default/grub) with kernel argument ``arg`` (``name=value``) set, as module doc.

    ``value`` computes the new value from the current one (default: ``arg``'s value);
    UnbalancedQuotes when the line that has to be edited cannot be parsed."""
    name, value = _value_fn(arg, value)
    rx = arg_pattern(name)
    new = {p: (t or "").splitlines(keepends=True) for p, t in texts.items()}
    replaced = False
    last = None  # (path, index) of the last GRUB_CMDLINE_LINUX assignment, in reading order
    for path, lines in new.items():
        for i, line in enumerate(lines):
            m = _ASSIGN.match(line)
            if not m:
                continue
            if m.group("key") == "GRUB_CMDLINE_LINUX":
                last = (path, i)
            edited = _replace_arg(line, rx, name, value)
            if edited is not None:
                lines[i] = edited
                replaced = True
    if not replaced:
        appended = f"{name}={value(None)}"
        if last is not None:
            path, i = last
            edited = _append_arg(new[path][i], appended)
            if edited is None:
                raise UnbalancedQuotes(path, i + 1)
            new[path][i] = edited
        else:
            lines = new[next(iter(new))]
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(f'GRUB_CMDLINE_LINUX="{appended}"\n')
    return {p: "".join(lines) for p, lines in new.items()}


def grub_with_arg(text: str, arg: str, value: ValueFn | None = None) -> str:
    """One /etc/default/grub text with kernel argument ``arg`` set (see ``with_kernel_arg``)."""
    return with_kernel_arg({GRUB_DEFAULT: text}, arg, value)[GRUB_DEFAULT]


def plan_grub_edits(ctx: PlanCtx, arg: str, value: ValueFn | None = None
                    ) -> tuple[dict[str, tuple[str | None, str]], str | None]:
    """{path: (old text, new text)} of the GRUB settings files that change to put ``arg``
    on GRUB's command line, or a problem (unbalanced quotes). Every other line, whatever its
    bytes, is written back as it is (``text_for_edit``)."""
    texts: dict[str, str | None] = {path: text_for_edit(ctx, path) for path in grub_files(ctx)}
    try:
        new = with_kernel_arg(texts, arg, value)
    except UnbalancedQuotes as exc:
        return {}, (f"cannot edit {ctx.host.display(exc.path)} line {exc.lineno} (unbalanced quotes): "
                    f"add {arg} to GRUB_CMDLINE_LINUX by hand")
    return {p: (texts[p], t) for p, t in new.items() if t != (texts[p] or "")}, None


# ---- boot entries and the generated menu ----------------------------------------------------

def bls_cmdlines(ctx: PlanCtx) -> list[list[str]]:
    return bootcmdline.bls_cmdlines(ctx.host)


def menu_cmdlines(ctx: PlanCtx) -> list[list[str]]:
    return bootcmdline.menu_cmdlines(ctx.host)


def boot_entry_cmdlines(ctx: PlanCtx) -> list[list[str]]:
    """Kernel arguments of every boot entry: BLS entries, else the generated grub.cfg."""
    return bls_cmdlines(ctx) or menu_cmdlines(ctx)


def _bls_value(ctx: PlanCtx, name: str) -> str | None:
    """The argument's value when every boot loader spec entry sets it (what grubby edits)."""
    values = [cmdline_value(opts, name) for opts in bls_cmdlines(ctx)]
    if not values or any(v is None for v in values):
        return None
    return values[-1]


def boot_arg_value(ctx: PlanCtx, name: str) -> tuple[str | None, str]:
    """The kernel argument at the next boot and where it was read: boot loader
    configuration first, then the running command line (booted again)."""
    running = ctx.facts.kernel.cmdline if ctx.host.live else []
    value, source = next_boot_value(ctx.host, running, name)
    if value is not None and source != ctx.host.display("/proc/cmdline"):
        return value, source
    bls = _bls_value(ctx, name)
    if bls is not None:
        return bls, ctx.host.display(BLS_ENTRIES)
    return value, source


# ---- regenerating the menu ------------------------------------------------------------------

def grub_generator(ctx: PlanCtx) -> list[str] | None:
    """The installed command that regenerates grub.cfg from the settings."""
    name = tool(ctx, "update-grub", "grub2-mkconfig", "grub-mkconfig")
    if name == "update-grub":
        return ["update-grub"]
    if name == "grub2-mkconfig":
        return ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]
    if name == "grub-mkconfig":
        return ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"]
    return None


def regen_argv(ctx: PlanCtx) -> list[str]:
    """The installed generator, else the distribution's usual one."""
    return grub_generator(ctx) or (["update-grub"] if ctx.facts.os.family == "debian"
                                   else ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"])


def regenerate_menu(regen: list[str], why: str = "the boot loader reads the generated menu, not "
                    "/etc/default/grub", runtime: bool = False) -> RunCommand:
    """The regeneration step; undo runs it again last, once the settings are restored."""
    return RunCommand(argv=list(regen), undo_argv=list(regen), undo_at_end=True, reboot=True, runtime=runtime,
                      title=f"regenerate the boot menu ({shlex.join(regen)})",
                      why=why + "; undo regenerates it again once the settings are restored")


# ---- the proposal ---------------------------------------------------------------------------

def _checked_value(name: str, value: ValueFn) -> ValueFn:
    """``value``, raising BadName when ``name=<new value>`` is not a plain kernel argument."""
    def checked(old: str | None) -> str:
        new = value(old)
        names.kernel_arg(f"{name}={new}")
        return new
    return checked


def kernel_arg_proposal(ctx: PlanCtx, arg: str, why: str, *, value: ValueFn | None = None,
                        runtime: bool = False, guess_generator: bool = True) -> Proposal:
    """Set kernel argument ``arg`` (``name=value``) for the next boots (pending reboot).

    ``value``: the new value from the current one (default: ``arg``'s value), e.g. to keep
    other options of a comma list. ``runtime`` marks the grubby and regeneration steps
    (running system only). ``guess_generator``: on a live root without any GRUB generator
    installed, run the distribution's usual one anyway (True) or only say so (False).

    ``arg``, and each ``name=value`` computed from a current value, must be a plain
    kernel argument (``checks.names.kernel_arg``): GRUB's settings are a shell file.
    """
    host = ctx.host
    try:
        names.kernel_arg(arg)
    except names.BadName as exc:
        return nothing(f"{exc}: not added to the kernel command line")
    if value is not None:
        value = _checked_value(arg.partition("=")[0], value)
    grubby = has_grubby(ctx)
    if grubby and host.live:
        return Proposal(actions=[AddKernelArgs(args=[arg], why=why, reboot=True, runtime=runtime)])
    if not host.exists(GRUB_DEFAULT) and not host.glob(GRUB_D, "*.cfg"):
        return nothing(f"no grubby and no GRUB configuration ({host.display(GRUB_DEFAULT)}): add {arg} to the "
                       "boot loader's kernel command line by hand (systemd-boot: /etc/kernel/cmdline) and reboot")
    try:
        edits, problem = plan_grub_edits(ctx, arg, value)
    except names.BadName as exc:
        return nothing(f"GRUB's settings ({host.display(GRUB_DEFAULT)}, {host.display(GRUB_D)}): {exc}: "
                       "not changed; fix that value by hand")
    if problem:
        return nothing(problem)
    writes = [write_file(ctx, path, new, why=why, reboot=True) for path, (_, new) in edits.items()]
    prop = Proposal(actions=[w for w in writes if w])
    if not prop.actions:
        return nothing(f"GRUB's command line already has {arg}")
    if ctx.offline:
        regen = shlex.join(regen_argv(ctx))
        prop.notes.append(f"offline root: only the GRUB settings are edited, the boot menu is not regenerated here; "
                          f"it is regenerated at the next kernel update, or run '{regen}' inside the root before "
                          f"booting it (e.g. chroot {host.root} {regen})")
        if grubby:
            prop.notes.append(f"this root uses grubby/BLS entries ({BLS_ENTRIES}), which keep their own options: "
                              f"run 'grubby --update-kernel ALL --args {arg}' inside the root")
        return prop
    regen = grub_generator(ctx) or (regen_argv(ctx) if guess_generator else None)
    if regen is None:
        prop.notes.append("neither update-grub nor grub2-mkconfig/grub-mkconfig is installed: regenerate the "
                          "boot loader configuration by hand, or the change waits for it")
        return prop
    prop.actions.append(regenerate_menu(regen, runtime=runtime))
    return prop
