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
    from checks.facts import Facts
    from checks.profile import DEFAULT_PROFILE, load_profile
    from checks.runner import run_checks

    profile = load_profile(args.profile or DEFAULT_PROFILE)
    facts = Facts(host)
    facts.prefetch()
    report = run_checks(host, profile, facts=facts)
    return profile, facts, report


def _fix_ids(args) -> list[str] | None:
    if not getattr(args, "fix", None):
        return None
    return [f.strip() for f in args.fix.split(",") if f.strip()]


def make_plan(args, host):
    from remediations.plan import build_plan

    profile, facts, report = _detect(args, host)
    plan = build_plan(host, facts, report, _fix_ids(args), profile_name=profile.name)
    return profile, plan


def dump_plan(plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(plan.to_dict(), indent=2) + "\n"
    import yaml

    return yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def load_plan_file(path: str):
    from remediations.plan import Plan, PlanError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise FixError(f"{path}: {exc.strerror}") from None
    try:
        import yaml

        data = yaml.safe_load(text)  # JSON is YAML too
    except Exception as exc:  # yaml.YAMLError and friends
        raise FixError(f"{path}: not YAML or JSON ({exc})") from None
    try:
        return Plan.from_dict(data)
    except PlanError as exc:
        raise FixError(f"{path}: {exc}") from None


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
    from remediations.plan import fill_old_text, render_preview

    if args.plan_file:
        plan = load_plan_file(args.plan_file)
        if args.root is None and plan.root != str(host.root):
            from checks.host import Host

            if not os.path.isdir(plan.root):
                raise FixError(f"the plan is for root {plan.root}, which does not exist here")
            host = Host(plan.root)
        elif args.root is not None and os.path.abspath(args.root) != plan.root:
            raise FixError(f"the plan was made for root {plan.root}, not {args.root}")
        if _fix_ids(args):
            raise FixError("--fix makes a new plan: give either a plan file or --fix, not both")
        fill_old_text(plan, host)
        from checks.profile import DEFAULT_PROFILE, load_profile

        profile = load_profile(args.profile or plan.profile or DEFAULT_PROFILE)
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
    try:
        result = apply_plan(host, plan, on_event=_print_event, verify_profile=profile)
    except NotRoot as exc:
        raise FixError(str(exc)) from None
    print()
    if result.failed:
        f = result.failed
        print(f"FAILED at: {f.summary}: {f.message}")
        if f.output:
            print("output:\n" + "\n".join("  " + l for l in f.output.rstrip().splitlines()[-30:]))
        print("Everything done before it is recorded; revert it with: kvmprep undo"
              + (f" --root {host.root}" if not host.live else ""))
    if result.verification:
        print("Checks after apply:")
        for cid, v in result.verification.items():
            print(f"  {v['status'].upper():<15} {cid}  {v['detail']}")
    if any(a.status == "pending-reboot" for a in result.actions):
        print("Some changes take effect after a reboot (marked pending-reboot).")
    print(f"journal: {result.journal}\nlog: {result.log}\nbackups: {result.backups}")
    print("undo: kvmprep undo" + (f" --root {host.root}" if not host.live else ""))
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_undo(args, host) -> int:
    from remediations.executor import NotRoot, undo_last
    from remediations.journal import Journal

    journal = Journal(host)
    apply_id = journal.last_undoable()
    if apply_id is None:
        print("Nothing to undo: no apply recorded in " + journal.path)
        return EXIT_OK
    records = [r for r in journal.records() if r.get("apply") == apply_id and r.get("event") == "before"]
    print(f"Undo apply {apply_id}: {len(records)} actions, in reverse order:")
    for r in reversed(records):
        print(f"  - {r.get('summary')}")
    if host.euid != 0:
        raise FixError("undo needs root: run it again with sudo (nothing was changed)")
    if not _confirm("Undo these actions?", args.yes):
        print("Not undone.")
        return EXIT_OK
    try:
        result = undo_last(host, on_event=_print_event, remove_packages=args.remove_packages)
    except NotRoot as exc:
        raise FixError(str(exc)) from None
    for line in result.reverted:
        print(f"  reverted: {line}")
    for line in result.notes:
        print(f"  note: {line}")
    for line in result.left:
        print(f"  NOT reverted: {line}")
    return EXIT_OK if result.ok else EXIT_FAILED
