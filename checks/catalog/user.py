"""Users: the admin's membership of the kvm and libvirt groups."""

from __future__ import annotations

from .. import accounts
from ..errors import ProbeError
from ..names import BadName, group_name, partition, user_name
from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check

_CREATED_BY = {"libvirt": "created by the libvirt package",
               "kvm": "created by systemd/udev or the QEMU package"}
# Older names of the same group (Ubuntu before 16.10 called libvirt's group libvirtd).
_ALIASES = {"libvirt": ("libvirtd",)}


@check(
    "user.groups",
    title="Admin user in the kvm and libvirt groups",
    why="Without the kvm group a user cannot open /dev/kvm; without libvirt, virsh cannot reach qemu:///system without sudo.",
    source="OpenStack Nova / Taikun OCP host guides (groups, re-login after changes); libvirt packaging",
    remediations=("add-user-to-groups",),
    params={"groups": ["kvm", "libvirt"], "user": ""},
)
def user_groups(ctx: Ctx):
    host = ctx.host
    wanted = [str(g) for g in ctx.params["groups"]]
    if ctx.params.get("user"):
        user, user_src = str(ctx.params["user"]), "profile parameter user"
    else:
        user, user_src = ctx.facts.user
    if user is None:
        return skipped(f"cannot tell who runs kvmprep ({user_src}); name the admin with the 'user' parameter")
    if user_src.startswith("/"):
        path, _, rest = user_src.partition(" ")
        user_src = f"{ctx.show(path)} {rest}".strip()
    # the names end up in the hint's usermod command line: names only
    _, bad = partition(group_name, ctx.params["groups"] or [])
    if bad:
        raise ProbeError("parameter groups", "; ".join(map(str, bad)))
    try:
        user_name(user)
    except BadName as exc:
        raise ProbeError(user_src, str(exc)) from None
    ev = [(user_src, user)]
    if user == "root":
        return passed("root needs no group membership", *ev)
    if host.read_text("/etc/group") is None:
        return skipped("no /etc/group in the root to read", (ctx.show("/etc/group"), "missing"))

    groups = accounts.read_groups(host)
    member_of = accounts.groups_of(host, user)
    users = accounts.read_users(host)
    if user not in users:
        ev.append((ctx.show("/etc/passwd"), f"{user} not listed (directory user?): only /etc/group member lists count"))

    resolved: dict[str, str] = {}  # wanted name -> the group name present
    absent = []
    for g in wanted:
        name = g if g in groups else next((a for a in _ALIASES.get(g, ()) if a in groups), None)
        if name is None:
            absent.append(g)
        else:
            resolved[g] = name
    not_member = [name for name in resolved.values() if name not in member_of]
    for g in wanted:
        name = resolved.get(g)
        if name is None:
            ev.append((ctx.show("/etc/group"), f"no group {g}"))
        else:
            ev.append((ctx.show("/etc/group"), f"{name} (gid {groups[name].gid}): "
                       + ("member" if name in member_of else f"{user} is not a member")))

    absent_note = "; ".join(f"group {g} does not exist yet ({_CREATED_BY.get(g, 'created by the package that uses it')})"
                            for g in absent)
    relogin = "; log out and back in (or run newgrp) for it to take effect"
    if not_member:
        detail = f"{user} is not in {', '.join(not_member)}" + (f"; {absent_note}" if absent else "")
        return failed(detail, *ev, hint=f"usermod -aG {','.join(not_member)} {user}{relogin}")
    if absent:
        return warned(f"{absent_note}" + (f"; {user} is in {', '.join(resolved.values())}" if resolved else ""),
                      *ev, hint="install the virtualization packages (they create the groups), then "
                                f"usermod -aG {','.join(absent)} {user}{relogin}")
    # Member per /etc/group: does this very process have the groups yet?
    uid = users[user].uid if user in users else None
    if host.live and uid is not None and uid == host.euid:
        gids = accounts.session_gids()
        stale = [name for name in resolved.values() if groups[name].gid not in gids]
        if stale:
            return warned(f"{user} is in {', '.join(resolved.values())} per /etc/group, but this login session "
                          f"does not have {', '.join(stale)} yet: re-login needed", *ev,
                          ("getgroups()", " ".join(str(g) for g in sorted(gids))),
                          hint=f"log out and back in (or run: newgrp {stale[0]})")
    names = ", ".join(resolved.values())
    return passed(f"{user} is in {names}", *ev)
