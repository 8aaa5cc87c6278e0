"""/dev/kvm access: group kvm, the udev rule that gives /dev/kvm to it, and
the admin's membership of the kvm and libvirt groups."""

from __future__ import annotations

import stat as stat_mod

from checks import names
from checks.accounts import groups_of, read_groups, read_users
from checks.catalog.kvm import _policy_ok, _udev_kvm_rule
from checks.catalog.user import _ALIASES

from ..actions import AddUserToGroups, RunCommand
from ..helpers import check_ctx, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, after_packages, nothing, remediation

RULE_FILE = "/etc/udev/rules.d/65-kvm.rules"
RULE_LINE = 'KERNEL=="kvm", GROUP="kvm", MODE="0660"'
WANT_MODE = 0o660


def _root_args(ctx: PlanCtx, flag: str) -> list[str]:
    """``-R DIR`` / ``--root DIR`` for the shadow tools when the root is not /."""
    root = str(ctx.host.root)
    return [] if root == "/" else [flag, root]


def _rule_text(old: str | None) -> str:
    """The rule file: our line in place of its KERNEL=="kvm" lines, the rest kept."""
    if not old:
        return "# written by kvmprep: /dev/kvm for group kvm (qemu and the admins in it)\n" + RULE_LINE + "\n"
    out, placed = [], False
    for line in old.splitlines(keepends=True):
        s = line.strip()
        if s and not s.startswith("#") and 'KERNEL=="kvm"' in s.replace(" ", ""):
            if not placed:
                body = line.rstrip("\r\n")
                out.append(RULE_LINE + line[len(body):])
                placed = True
            continue
        out.append(line)
    text = "".join(out)
    if not placed:
        text = (text if text.endswith("\n") or not text else text + "\n") + RULE_LINE + "\n"
    return text


def _rule_mode(rule: dict) -> tuple[str, int]:
    group = rule.get("GROUP", ("root", ""))[0]
    try:
        mode = int(rule.get("MODE", ("0600", ""))[0], 8)
    except ValueError:
        mode = 0o600
    return group, mode


UDEV_RELOAD = ["udevadm", "control", "--reload"]
UDEV_TRIGGER_KVM = ["udevadm", "trigger", "--action=change", "--subsystem-match=misc", "--sysname-match=kvm"]
UDEV_SETTLE = ["udevadm", "settle", "--timeout=30"]


def _udev_retrigger(why: str) -> list:
    """udev reads its rules again, applies them to /dev/kvm (a "change" event;
    matching by subsystem and name, so that no /dev/kvm is no error), then waits
    for it. The reload is needed: systemd-udevd (252, Debian 12) looks for
    changed rule files at most every 3 s, so a trigger right after modprobe's
    events ran with the old rules (the QEMU lab caught it in CI). Undone the
    same way, last and in this order, once undo has restored the rules."""
    return [RunCommand(argv=list(UDEV_RELOAD), undo_argv=list(UDEV_RELOAD), undo_at_end=True, runtime=True,
                       title="make udev read the new rule (udevadm control --reload)",
                       why="systemd-udevd looks for changed rule files at most every 3 s"),
            RunCommand(argv=list(UDEV_TRIGGER_KVM), undo_argv=list(UDEV_TRIGGER_KVM), undo_at_end=True,
                       runtime=True, title="apply the udev rule to /dev/kvm now (udevadm trigger)", why=why),
            RunCommand(argv=list(UDEV_SETTLE), undo_argv=list(UDEV_SETTLE), undo_at_end=True, runtime=True,
                       title="wait until udev has applied it (udevadm settle)",
                       why="the checks after the apply read /dev/kvm's group and mode")]


@remediation(
    "fix-kvm-permissions",
    title="Give /dev/kvm to group kvm (mode 0660)",
    fixes=("kvm.device-access",),
    description="Create the system group kvm when missing (groupadd -r kvm), write the udev rule "
                '/etc/udev/rules.d/65-kvm.rules (KERNEL=="kvm", GROUP="kvm", MODE="0660") unless a rule '
                "already gives it, then udevadm control --reload, trigger and settle for /dev/kvm on the running system, "
                "also when load-kvm-modules creates it in the same apply.",
)
def fix_kvm_permissions(ctx: PlanCtx) -> Proposal:
    host = ctx.host
    prop = Proposal()
    groups = read_groups(host)
    if host.read_text("/etc/group") is None:
        return nothing("no /etc/group in the root: cannot create group kvm there")
    if "kvm" not in groups:
        prop.actions.append(RunCommand(
            argv=["groupadd", *_root_args(ctx, "-R"), "-r", "kvm"],
            undo_argv=["groupdel", *_root_args(ctx, "-R"), "kvm"],
            title="create the system group kvm",
            why="qemu/libvirt and the admins reach /dev/kvm through group kvm"))

    rule = _udev_kvm_rule(check_ctx(ctx, "kvm.device-access"))
    group, mode = _rule_mode(rule)
    if not _policy_ok(group, mode):
        action = write_file(ctx, RULE_FILE, _rule_text(text_for_edit(ctx, RULE_FILE)),
                            why='udev creates /dev/kvm as group kvm, mode 0660 (now: '
                                + (f'group {group}, mode {mode:04o}' if rule else 'no rule, root:root 0600') + ")")
        if action:
            prop.actions.append(action)
        later = sorted({f for k, (_, f) in rule.items() if k in ("GROUP", "MODE")
                        and f.rsplit("/", 1)[-1] > RULE_FILE.rsplit("/", 1)[-1]})
        if later:
            prop.notes.append(f"{', '.join(later)} sets /dev/kvm's group or mode after {RULE_FILE} and wins: "
                              "change it there by hand")

    # the node the running kernel made: fix it now
    if host.live:
        st = host.stat("/dev/kvm")
        udev = host.exists("/run/udev/control") and host.which("udevadm")
        if st is None:
            if prop.actions and udev:
                # load-kvm-modules (earlier in the plan) may create it before this runs: udev
                # made it with the old rules then, so apply the new one to it (none: no-op)
                prop.actions += _udev_retrigger("if load-kvm-modules created /dev/kvm earlier in this apply, "
                                                "udev made it under the old rules")
            elif prop.actions:
                prop.notes.append("/dev/kvm does not exist now (kvm.device): the rule applies when it appears")
        else:
            dev_group = next((g.name for g in groups.values() if g.gid == st.st_gid), None)
            cur_mode = stat_mod.S_IMODE(st.st_mode)
            if not (_policy_ok(dev_group, cur_mode) and (dev_group != "kvm" or "kvm" in groups)):
                if udev:
                    prop.actions += _udev_retrigger(f"/dev/kvm is group {dev_group or st.st_gid}, "
                                                    f"mode {cur_mode:04o} now")
                else:
                    dev = host.path("/dev/kvm")
                    prop.actions.append(RunCommand(
                        argv=["chgrp", "kvm", dev], undo_argv=["chgrp", str(st.st_gid), dev], runtime=True,
                        title="give /dev/kvm to group kvm now (chgrp kvm /dev/kvm)",
                        why="udev does not run here, so nothing applies the rule to the existing node"))
                    prop.actions.append(RunCommand(
                        argv=["chmod", f"{WANT_MODE:04o}", dev], undo_argv=["chmod", f"{cur_mode:04o}", dev],
                        runtime=True, title=f"make /dev/kvm mode {WANT_MODE:04o} now",
                        why=f"/dev/kvm is mode {cur_mode:04o} now"))
    elif prop.actions:
        prop.notes.append("udevadm trigger: skipped, an offline root has no running system; "
                          "the rule applies when that system boots")

    if not prop.actions:
        files = ", ".join(sorted({f for _, f in rule.values()}))
        return nothing(f"group kvm exists and {files} gives /dev/kvm group {group}, mode {mode:04o}"
                       + ("; /dev/kvm is right now" if host.live and host.stat("/dev/kvm") else ""))
    return prop


@remediation(
    "add-user-to-groups",
    title="Add the admin to the kvm and libvirt groups",
    fixes=("user.groups", "kvm.device-access"),
    description="usermod -aG kvm,libvirt USER for the admin running kvmprep (SUDO_USER when run through "
                "sudo, or user.groups' user parameter): only the groups the profile asks for that exist "
                "(libvirtd accepted for libvirt); takes effect at the next login.",
)
def add_user_to_groups(ctx: PlanCtx) -> Proposal:
    host = ctx.host
    params = check_ctx(ctx, "user.groups").params
    if params.get("user"):
        user, source = params["user"], "profile parameter user"
    else:
        user, source = ctx.facts.user
    if user is None:
        return nothing(f"cannot tell who runs kvmprep ({source}); name the admin with user.groups' user parameter")
    if user == "root":
        return nothing("root needs no group membership (run kvmprep through sudo to add your own user)")
    try:
        names.user_name(user)
    except names.BadName as exc:  # never an option or two words for usermod
        return nothing(f"{source}: {exc}: no group added")
    if host.read_text("/etc/group") is None:
        return nothing("no /etc/group in the root")
    if user not in read_users(host):
        return nothing(f"{user} is not a local user of {host.display('/etc/passwd')} (a directory user?): "
                       "add it to the groups in the directory")
    groups = read_groups(host)
    member_of = groups_of(host, user)
    wanted, bad = names.partition(names.group_name, params.get("groups") or [])
    add, absent, notes = [], [], [f"profile groups: {b}: not added" for b in bad]
    for g in wanted:
        name = g if g in groups else next((a for a in _ALIASES.get(g, ()) if a in groups), None)
        if name is None:
            absent.append(g)
        elif name not in member_of and name not in add:
            add.append(name)
    for g in absent:
        who = ("fix-kvm-permissions creates it" if g == "kvm"
               else "the virtualization packages create it (install-virtualization-packages)")
        notes.append(f"group {g} does not exist yet: {who}; planned again once this plan's packages "
                     "are in (else: plan again afterwards)")
    # a group that does not exist yet may come with this plan's packages: plan
    # again once they are in (apply's second round), rather than leave it to the admin
    later = after_packages if absent else nothing
    if not add:
        have = [g for g in member_of if g in groups and (g in wanted or any(
            g in _ALIASES.get(w, ()) for w in wanted))]
        return later((f"{user} is already in {', '.join(sorted(have))}" if have else f"{user}: nothing to add")
                     + (f"; {'; '.join(notes)}" if notes else ""))
    prop = Proposal(notes=notes, after_packages=bool(absent))
    prop.actions.append(AddUserToGroups(
        user=user, groups=add, root=str(host.root),
        why=f"{user} ({source}) uses /dev/kvm and qemu:///system without sudo"))
    prop.notes.append(f"{user} must log out and back in (or run newgrp) for the new groups to count")
    return prop
