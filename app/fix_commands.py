"""``kvmprep plan``, ``apply`` and ``undo``: thin front ends over remediations/."""

from __future__ import annotations

import json
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class FixError(Exception):
    """Refused or bad input: one line on stderr, exit status 2."""


def _detect(args, host):
    """Run the profile's checks (the plan starts from what fails)."""
    from checks.profile import DEFAULT_PROFILE, load_profile

    profile = load_profile(args.profile or DEFAULT_PROFILE)
    return (profile, *_detect_with(profile, host))


def _detect_with(profile, host):
    from checks.facts import Facts
    from checks.runner import run_checks

    facts = Facts(host)
    facts.prefetch()
    return facts, run_checks(host, profile, facts=facts)


def _fix_ids(args) -> list[str] | None:
    if not getattr(args, "fix", None):
        return None
    return [f.strip() for f in args.fix.split(",") if f.strip()]


def make_plan(args, host):
    from remediations.plan import build_plan

    if getattr(args, "answers", None):
        return plan_from_answers(args, host)
    profile, facts, report = _detect(args, host)
    plan = build_plan(host, facts, report, _fix_ids(args), profile_name=_profile_ref(profile))
    return profile, plan


def plan_from_answers(args, host):
    """``--answers FILE``: the profile, ignored checks, fixes and admin user of
    an earlier wizard run, planned afresh for this host (intent, never commands)."""
    from checks.profile import load_profile
    from checks.runner import UsageError, parse_ignore, run_checks
    from checks.facts import Facts
    from remediations.plan import build_plan

    if _fix_ids(args) or args.profile or getattr(args, "plan_file", None):
        raise FixError("--answers gives the profile and the fixes: use it without --fix, --profile or a plan file")
    answers, profile_ref = read_answers(args.answers, host)
    profile = load_profile(profile_ref)
    try:
        ignore = parse_ignore(answers.ignore, profile.checks)
    except UsageError as exc:
        raise FixError(f"{args.answers}: ignore: {str(exc).split(': ', 1)[-1]}") from None
    facts = Facts(host)
    facts.prefetch()
    report = run_checks(host, profile, ignore=ignore, facts=facts)
    plan = build_plan(host, facts, report, answers.fixes, profile_name=_profile_ref(profile))
    print(f"answers {args.answers}: profile {profile.name}, {len(answers.fixes)} fixes asked"
          + (f", {len(answers.declined)} declined" if answers.declined else "")
          + (f", admin user {answers.user}" if answers.user else "") + ".")
    return profile, plan


def read_answers(path: str, host):
    """An answers file, checked (FixError: file, key, reason), and what it says
    for this run: its admin user becomes SUDO_USER, as sudo would set it
    (planners read it: checks/accounts.py; so does an apply kvmprep starts
    again), and its profile a name or a kept copy. Returns (answers, profile)."""
    from remediations.answers import AnswersError, load_answers

    try:
        answers = load_answers(path)
    except AnswersError as exc:
        raise FixError(str(exc)) from None
    if answers.user:
        host.env["SUDO_USER"] = os.environ["SUDO_USER"] = answers.user
    return answers, answers.profile_file(lambda name, text: _keep_profile(host, name, text))


def _keep_profile(host, name: str, text: str) -> str:
    """An answers file's own profile, kept where kvmprep keeps its state (the
    apply loads it again by path); a temporary file when that is not writable."""
    from remediations.journal import Journal

    try:
        journal = Journal(host)
        fd = journal.open_entry(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        path = journal.entry_path(name)
    except PermissionError:
        import tempfile

        fd, path = tempfile.mkstemp(prefix="kvmprep-", suffix=".yaml")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _profile_ref(profile) -> str:
    """How a plan file names its profile: a built-in's name, or the path of the admin's file."""
    from checks.profile import is_builtin_file

    return profile.name if is_builtin_file(profile.file) else os.path.abspath(profile.file)


def dump_plan(plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(plan.to_dict(), indent=2) + "\n"
    import yaml

    return yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def read_plan_file(path: str) -> dict:
    """A plan file's data: a regular UTF-8 file of at most 4 MiB, YAML (or
    JSON) without aliases. Only its request is used (remediations.plan.requested)."""
    from checks.files import load_yaml_untrusted, read_regular, yaml_error_text

    try:
        text = read_regular(path, cap=4 << 20).decode("utf-8")
    except OSError as exc:
        raise FixError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FixError(f"{path}: not UTF-8 text") from None
    try:
        return load_yaml_untrusted(text)  # JSON is YAML too
    except Exception as exc:  # yaml.YAMLError and friends
        raise FixError(f"{path}: not YAML or JSON ({yaml_error_text(exc)})") from None


def plan_from_file(args, host):
    """``apply PLAN``: plan again for the file's root, profile and fixes, and
    go on only if that equals the file (like a saved Terraform plan). What
    runs is what was just computed, never what the file says."""
    from checks.profile import DEFAULT_PROFILE, load_profile
    from remediations.plan import PlanError, build_plan, compare, requested

    data = read_plan_file(args.plan_file)
    try:
        ids, root, profile_ref = requested(data)
    except PlanError as exc:
        raise FixError(f"{args.plan_file}: {exc}") from None
    if _fix_ids(args):
        raise FixError("--fix makes a new plan: give either a plan file or --fix, not both")
    if args.root is None and os.path.abspath(root) != str(host.root):
        raise FixError(f"the plan was made for root {root}: apply it there with --root {root}")
    if args.root is not None and os.path.abspath(args.root) != os.path.abspath(root):
        raise FixError(f"the plan was made for root {root}, not {args.root}")
    profile = load_profile(args.profile or profile_ref or DEFAULT_PROFILE)
    facts, report = _detect_with(profile, host)
    fresh = build_plan(host, facts, report, ids, profile_name=_profile_ref(profile))
    try:
        compare(data, fresh, args.plan_file)
    except PlanError as exc:
        sys.stdout.write(getattr(exc, "diff", ""))
        raise FixError(str(exc)) from None
    return profile, fresh


def cmd_plan(args, host) -> int:
    from remediations.plan import render_preview

    _, plan = make_plan(args, host)
    text = render_preview(plan) if args.format == "text" else dump_plan(plan, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text if args.format != "text" else dump_plan(plan, "yaml"))
        print(f"plan written to {args.output} ({len(plan.actions)} actions); "
              f"review it, then: kvmprep apply {args.output}")
        if args.format == "text":
            sys.stdout.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not (sys.stdin and sys.stdin.isatty()):
        raise FixError("no terminal to ask for confirmation: review the plan, then run again with --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


class _EventSink:
    """Prints events for the admin and, for the wizard, appends them as JSON lines."""

    def __init__(self, path: str | None):
        self.fh = open(path, "a", encoding="utf-8", buffering=1) if path else None

    def __call__(self, event: dict) -> None:
        _print_event(event)
        self.write(event)

    def write(self, event: dict) -> None:
        if self.fh is None:
            return
        data = dict(event)
        if "report" in data:
            from dataclasses import asdict

            data["report"] = asdict(data["report"])
        self.fh.write(json.dumps(data) + "\n")


def _print_event(event: dict) -> None:
    kind = event.get("event")
    if kind == "line":
        print("    " + event["text"], flush=True)
    elif kind == "action-start":
        rep = event["report"]
        print(f"==> {rep.summary}", flush=True)
    elif kind == "action":
        rep = event["report"]
        extra = f": {rep.message}" if rep.message else ""
        print(f"    [{rep.status}] {rep.summary}{extra}", flush=True)


def cmd_apply(args, host) -> int:
    from remediations.executor import NotRoot, apply_plan
    from remediations.journal import Journal
    from remediations.plan import render_preview

    if args.attach:
        return attach(host)
    running = Journal(host).running_pid()
    if running:
        raise FixError(f"another kvmprep apply or undo is running (pid {running}): nothing was applied; "
                       "watch it with kvmprep apply --attach, then plan again")
    if args.plan_file:
        profile, plan = plan_from_file(args, host)
    else:
        profile, plan = make_plan(args, host)
    sys.stdout.write(render_preview(plan))
    if plan.empty:
        print("Nothing to apply.")
        return EXIT_OK
    if args.dry_run:
        print("Dry run: nothing was changed.")
        return EXIT_OK
    if host.euid != 0:
        raise FixError("applying fixes needs root: run it again with sudo (nothing was changed)")
    files, commands = plan.counts()
    if not _confirm(f"Apply {len(plan.actions)} actions ({files} files, {commands} commands)?", args.yes):
        print("Not applied: nothing was changed.")
        return EXIT_OK
    if os.environ.get("SSH_CONNECTION") and not args.foreground:
        return apply_detached(host, plan, profile)
    _mark_running(host)
    sink = _EventSink(getattr(args, "events", None))
    try:
        result = apply_plan(host, plan, on_event=sink, verify_profile=profile)
        if result.ok and plan.replan:
            result = _second_round(args, host, plan, profile, result, sink)
    except NotRoot as exc:
        raise FixError(str(exc)) from None
    sink.write({"event": "finished", "ok": result.ok, "apply_id": result.apply_id,
                "verification": result.verification, "journal": result.journal, "log": result.log,
                "backups": result.backups,
                "actions": [{"remediation": a.remediation, "summary": a.summary, "status": a.status,
                             "message": a.message, "output": a.output, "returncode": a.returncode}
                            for a in result.actions],
                "fixes": {s.remediation: s.fixes for s in plan.steps}})
    print()
    if result.failed:
        f = result.failed
        print(f"FAILED at: {f.summary}: {f.message}")
        if f.output:
            print("output:\n" + "\n".join("  " + l for l in f.output.rstrip().splitlines()[-30:]))
        print("Everything done before it is recorded; revert it with: kvmprep undo"
              + (f" --root {host.root}" if not host.live else ""))
    print("Result:")
    print(summary_text(result, plan))
    if any(a.status == "pending-reboot" for a in result.actions):
        print("Some changes take effect after a reboot (marked pending-reboot).")
    print(f"journal: {result.journal}\nlog: {result.log}\nbackups: {result.backups}")
    print("undo: kvmprep undo" + (f" --root {host.root}" if not host.live else ""))
    return EXIT_OK if result.ok else EXIT_FAILED


def summary_text(result, plan) -> str:
    """Each fix with its actions' states and, under them, the checks it was
    meant to fix as they are now (run again after the apply)."""
    lines = []
    by_step: dict[str, list] = {}
    for rep in result.actions:
        by_step.setdefault(rep.remediation, []).append(rep)
    fixes = {s.remediation: s.fixes for s in plan.steps}
    for rid, reps in by_step.items():
        lines.append(f"  {rid}")
        for rep in reps:
            lines.append(f"    {rep.status.upper():<15} {rep.summary}" + (f" ({rep.message})" if rep.message else ""))
        for cid in fixes.get(rid, []):
            v = result.verification.get(cid)
            if v:
                lines.append(f"    check {cid}: {v['status'].upper()} - {v['detail']}")
    return "\n".join(lines)


def _second_round(args, host, plan, profile, first, sink=_print_event):
    """Fixes that waited for this plan's packages (enabling libvirt's units):
    planned now that the packages are in, shown, confirmed like the first."""
    from checks.host import Host
    from remediations.executor import apply_plan
    from remediations.plan import build_plan, render_preview

    fresh = Host(host.root, env=host.env, euid=host.euid, live=host.live)
    from checks.facts import Facts
    from checks.runner import run_checks

    facts = Facts(fresh)
    report = run_checks(fresh, profile, facts=facts)
    second = build_plan(fresh, facts, report, plan.replan, profile_name=_profile_ref(profile))
    if second.empty:
        # e.g. Debian's libvirt package enabled libvirtd itself: say so rather than nothing
        print("\nNow that the packages are installed:")
        for rid, reason in second.nothing_to_do.items():
            print(f"[-] {rid}: nothing to do ({reason})")
        return first
    print("\nNow that the packages are installed, the fixes that needed them:")
    if hasattr(sink, "write"):
        sink.write({"event": "second-round", "steps": [s.to_dict() for s in second.steps]})
    sys.stdout.write(render_preview(second))
    files, commands = second.counts()
    if not _confirm(f"Apply {len(second.actions)} more actions ({files} files, {commands} commands)?", args.yes):
        print("Second part not applied.")
        return first
    result = apply_plan(fresh, second, on_event=sink, verify_profile=profile, group=first.apply_id)
    result.actions = first.actions + result.actions
    plan.steps.extend(second.steps)  # for the summary: the second round's fixes and their checks
    result.verification = {**first.verification, **result.verification}
    return result


def cmd_undo(args, host) -> int:
    from remediations.executor import NotRoot, undo_last
    from remediations.journal import Journal

    journal = Journal(host)
    ids = journal.last_undoable_group()
    if not ids:
        print("Nothing to undo: no apply recorded in " + journal.path)
        return EXIT_OK
    every = journal.records()
    undone = {(r.get("apply"), r.get("step"), r.get("action")) for r in every if r.get("event") == "undone"}
    records = [r for r in every if r.get("apply") in ids and r.get("event") == "before"
               and (r.get("apply"), r.get("step"), r.get("action")) not in undone]
    print(f"Undo apply {', '.join(ids)}: {len(records)} actions, in reverse order:")
    for r in reversed(records):
        print(f"  - {r.get('summary')}")
    if host.euid != 0:
        raise FixError("undo needs root: run it again with sudo (nothing was changed)")
    if not _confirm("Undo these actions?", args.yes):
        print("Not undone.")
        return EXIT_OK
    try:
        result = undo_last(host, on_event=_print_event, remove_packages=args.remove_packages,
                           skip_broken=getattr(args, "skip_broken", False))
    except NotRoot as exc:
        raise FixError(str(exc)) from None
    for line in result.reverted:
        print(f"  reverted: {line}")
    for line in result.notes:
        print(f"  note: {line}")
    for line in result.left:
        print(f"  NOT reverted: {line}")
    return EXIT_OK if result.ok else EXIT_FAILED


# ---- over SSH: the apply must survive the session dropping --------------------

def apply_detached(host, plan, profile) -> int:
    """Run the apply in its own session (a transient systemd unit where systemd
    runs), then follow its output. If the SSH connection drops, the apply goes
    on; ``kvmprep apply --attach`` shows it again."""
    import signal
    import subprocess
    import time

    from remediations.journal import Journal
    from remediations.relaunch import in_systemd_unit, kvmprep_argv, systemd_run_usable

    journal = Journal(host)
    since = len(journal.records())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # kvmprep's state, confined to the root (no symlink is followed out of it)
    plan_path = journal.entry_path(f"plan-{stamp}.json")
    fd = journal.open_entry(f"plan-{stamp}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        json.dump(plan.to_dict(), fh)
    out_path = journal.entry_path("apply.out")
    argv = kvmprep_argv("apply", plan_path, "--yes", "--foreground",
                        "--root", str(host.root), "--profile", profile.file)
    out = journal.open_entry("apply.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    # the apply plans again and must get the same plan (else: a stale plan): it
    # needs what the planners read from the environment (the admin behind sudo,
    # the SSH connection); --foreground, not a missing SSH_CONNECTION, keeps it
    # from detaching again
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if systemd_run_usable(host):
        unit = f"kvmprep-apply-{stamp}"
        subprocess.run(in_systemd_unit(argv, unit, out_path, env), check=True)
        where = f"systemd unit {unit}"
    else:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        where = f"pid {proc.pid}, its own session"
    os.close(out)
    print(f"Over SSH: the apply runs detached ({where}); if this connection drops it goes on.\n"
          f"Watch it again with: kvmprep apply --attach" + ("" if host.live else f" --root {host.root}"))
    return attach(host, since=since)


def attach(host, announce: bool = False, since: int | None = None) -> int:
    """Print the running (or last) detached apply's output as it grows.

    ``since``: the journal length before a detached apply was started; wait
    for that apply to begin (or its process to fail first) and to end.
    """
    import time

    from remediations.journal import Journal

    journal = Journal(host)
    out_path = journal.entry_path("apply.out")
    if announce:
        print(f"An apply is running (pid {journal.running_pid()}): following its output.")

    def new_records():
        records = journal.records()
        return records[since:] if since is not None else records

    deadline = time.monotonic() + 20
    if since is not None:  # wait for the detached apply to take the lock and start
        while (journal.running_pid() is None and not any(r.get("event") == "end" for r in new_records())
               and time.monotonic() < deadline):
            time.sleep(0.05)
    pos = 0
    while True:
        running = journal.running_pid() is not None or _apply_alive(journal)
        chunk = ""
        try:
            fd = journal.open_entry("apply.out", os.O_RDONLY)
        except OSError:  # not there (yet), or not a file kvmprep made: nothing to show
            fd = None
        if fd is not None:
            try:
                os.lseek(fd, pos, os.SEEK_SET)
                data = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
            finally:
                os.close(fd)
            pos += len(data)
            chunk = data.decode("utf-8", errors="replace")
        if chunk:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        if not running and not chunk:
            # the verification after the lock is released still prints: give it a moment
            if since is None or _settled(out_path, pos):
                break
        time.sleep(0.1)
    end = [r for r in new_records() if r.get("event") == "end"]
    if not end:
        print("No finished apply recorded.")
        return EXIT_FAILED
    return EXIT_OK if end[-1].get("ok") else EXIT_FAILED


# The journal's lock is held for each plan an apply runs, not between them: an
# apply with a second round (the fixes that waited for the packages) releases
# it while it checks the host again and plans, and again before its summary.
# ``apply --attach`` stopped there and showed a result without its end (found
# in the lab). So every apply also holds this entry's lock for its whole life.
_RUNNING = "apply.running"
_running_fd = None


def _mark_running(host) -> None:
    """Hold the "an apply is running" lock until this process ends (closed by the kernel)."""
    import fcntl

    from remediations.journal import Journal

    global _running_fd
    try:
        fd = Journal(host).open_entry(_RUNNING, os.O_RDWR | os.O_CREAT)
    except OSError:
        return  # not a reason to refuse the apply: attach then relies on the journal's lock
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # an attach's probe holds it exclusively for an instant only
    except OSError:
        os.close(fd)
        return
    _running_fd = fd


def _apply_alive(journal) -> bool:
    import fcntl

    try:
        fd = journal.open_entry(_RUNNING, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _settled(out_path: str, pos: int) -> bool:
    """True once the output file stopped growing for half a second."""
    import time

    time.sleep(0.5)
    try:
        return os.stat(out_path, follow_symlinks=False).st_size == pos
    except OSError:
        return True
