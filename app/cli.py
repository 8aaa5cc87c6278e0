"""``kvmprep``: the command line. Imports nothing heavy on the check path."""

from __future__ import annotations

import errno
import os
import sys
from types import SimpleNamespace

from checks import __version__

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class CliError(Exception):
    """Bad usage or bad input: printed as one line, exit status 2."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", metavar="DIR", default=None,
                   help="inspect the system under DIR (a mounted disk, chroot or captured dump) instead of /")
    p.add_argument("--profile", metavar="NAME|PATH", default=None,
                   help="which requirements apply: a built-in profile name or a .yaml file (default: generic)")


def _tui_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ascii", action="store_true", help="ASCII only and 16 colours (automatic on the Linux console, serial lines and VT terminals)")
    p.add_argument("--slow", action="store_true",
                   help="for slow links: no animation, low frame rate (automatic on the console and serial)")


def _answers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--answers", metavar="FILE", default=None,
                   help="the choices of an earlier wizard run (kvmprep-answers.yaml): profile, fixes, ignored "
                        "checks, admin user; planned afresh on this host")


def build_parser() -> argparse.ArgumentParser:
    import argparse  # not on the plain check path (see _plain_check_args)

    parser = argparse.ArgumentParser(
        prog="kvmprep",
        description="Prepare a Linux server to be a KVM/libvirt virtualization host: "
                    "detect every requirement, explain what fails, say how to fix it.",
        epilog="Exit status: 0 ready (no required check fails), 1 a required check fails, "
               "2 bad usage or input, 3 internal error. Without a command, runs 'check'.",
    )
    parser.add_argument("--version", action="version", version=f"kvmprep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chk = sub.add_parser("check", help="detect every requirement and print the verdict",
                         description="Run every check of the profile and print the result.")
    _common(chk)
    chk.add_argument("--ignore", metavar="IDS", default=None,
                     help="comma-separated check ids whose failure only warns ('all' for every check)")
    chk.add_argument("--format", choices=("table", "json", "yaml"), default="table",
                     help="output format (default: table)")
    chk.add_argument("--list", action="store_true", help="list the profile's checks instead of running them")

    pl = sub.add_parser("plan", help="show what would be fixed and how (changes nothing)",
                        description="Detect, then build the plan of fixes: every file diff and exact command.")
    _common(pl)
    pl.add_argument("--fix", metavar="IDS", help="plan exactly these remediations (comma-separated)")
    _answers_flag(pl)
    pl.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    pl.add_argument("-o", "--output", metavar="FILE", help="also write the plan to FILE (YAML unless --format json)")

    ap = sub.add_parser("apply", help="apply a plan after confirmation",
                        description="Show the plan, ask, apply it, then run the fixed checks again.")
    ap.add_argument("plan_file", nargs="?", metavar="PLAN_FILE", help="a plan written by 'kvmprep plan -o'")
    _common(ap)
    ap.add_argument("--fix", metavar="IDS", help="apply exactly these remediations (comma-separated)")
    _answers_flag(ap)
    ap.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    ap.add_argument("--dry-run", action="store_true", help="show the plan and exit")
    ap.add_argument("--attach", action="store_true",
                    help="follow a running (or the last) detached apply's output")
    ap.add_argument("--foreground", action="store_true",
                    help="over SSH too, run in this process instead of detached")
    ap.add_argument("--events", metavar="FILE", help=argparse.SUPPRESS)  # JSON lines for the wizard

    un = sub.add_parser("undo", help="revert the last apply",
                        description="Revert the last apply, action by action in reverse order.")
    un.add_argument("--root", metavar="DIR", default=None, help="the root the apply changed")
    un.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    un.add_argument("--remove-packages", action="store_true",
                    help="also remove packages the apply installed (default: list them)")
    un.add_argument("--skip-broken", action="store_true",
                    help="give up the actions that cannot be undone (recorded), so the apply counts as undone")

    wz = sub.add_parser("wizard", help="the step-by-step wizard (the default on a terminal)",
                        description="Start the Textual wizard: detect, explain, choose fixes, preview, apply.")
    _common(wz)
    _answers_flag(wz)
    _tui_flags(wz)

    bd = sub.add_parser("bundle", help="write kvmprep as one file for air-gapped servers",
                        description="Write a single-file zipapp of this kvmprep and its pure-Python "
                                    "dependencies, from what is installed (no network). Run it on the "
                                    "server with: python3 kvmprep.pyz [COMMAND]")
    bd.add_argument("-o", "--output", metavar="FILE", default="kvmprep.pyz",
                    help="where to write it (default: kvmprep.pyz)")

    fl = sub.add_parser("fleet", help="cross-host checks over many hosts' JSON reports",
                        description="Read the reports 'kvmprep check --format json' wrote on each host and "
                                    "check what only the fleet decides: the same kernel, CPUs a migrating guest "
                                    "finds everywhere, QEMU/libvirt versions, unique names, addresses and "
                                    "machine ids; with a host x check matrix.",
                        epilog="Exit status: 0 every host ready and no fleet check fails, 1 otherwise, "
                               "2 bad usage or a report that cannot be used (the file and why).")
    fl.add_argument("reports", nargs="+", metavar="REPORT.json", help="one JSON report per host")
    fl.add_argument("--profile", metavar="NAME|PATH", default=None,
                    help="whose fleet requirements apply (default: the reports' own built-in profile, "
                         "else generic)")
    fl.add_argument("--format", choices=("table", "json"), default="table")

    an = sub.add_parser("ansible", help="write an Ansible project that runs kvmprep on many hosts",
                        description="Write a ready Ansible project into DIR: site.yml (check every host and "
                                    "collect the reports; apply only with -e kvmprep_apply=true; kvmprep fleet "
                                    "at the end), an example inventory, kvmprep.pyz, the answers, a README.")
    an.add_argument("-o", "--output", metavar="DIR", required=True, help="the project folder (created)")
    an.add_argument("--profile", metavar="NAME|PATH", default=None, help="the profile to check (default: generic)")
    an.add_argument("--answers", metavar="FILE", default=None,
                    help="the answers to apply (kvmprep-answers.yaml from the wizard); they give the profile")

    prof = sub.add_parser("profiles", help="list the built-in profiles",
                          description="List the built-in profiles.")
    prof.add_argument("--format", choices=("table", "json"), default="table")
    return parser


# `check`'s options that take a value, and the attribute argparse stores each in.
_CHECK_VALUES = {"--root": "root", "--profile": "profile", "--ignore": "ignore", "--format": "format"}
_CHECK_FORMATS = ("table", "json", "yaml")


def _plain_check_args(argv: list[str]) -> SimpleNamespace | None:
    """The arguments of a plain ``check`` command line (options spelled out in
    full, values that do not start with '-', a known format), parsed without
    argparse: importing it and building every command's parser costs ~6 ms of a
    check's start-up. Anything else (help, abbreviations, mistakes) gives None,
    and argparse parses it: its messages and exit statuses stay the only ones."""
    if not argv or argv[0] != "check":
        return None
    args = SimpleNamespace(command="check", root=None, profile=None, ignore=None, format="table", list=False)
    tokens = iter(argv[1:])
    for token in tokens:
        if token == "--list":
            args.list = True
            continue
        option, eq, value = token.partition("=")
        if option not in _CHECK_VALUES:
            return None
        if not eq:
            value = next(tokens, None)
            if value is None or value.startswith("-"):
                return None
        setattr(args, _CHECK_VALUES[option], value)
    return args if args.format in _CHECK_FORMATS else None


def _host(args):
    from checks.host import Host

    if args.root == "":
        raise CliError("--root is empty: give the directory of the system to inspect, or leave --root out for this one")
    root = args.root or "/"
    if not os.path.isdir(root):
        raise CliError(f"--root {root}: no such directory")
    return Host(root)


def _profile(args):
    from checks.profile import DEFAULT_PROFILE, load_profile

    return load_profile(args.profile or DEFAULT_PROFILE)


def cmd_check(args) -> int:
    from checks.facts import Facts

    host = _host(args)
    facts = None
    if not args.list:
        # start the slow probes now: they overlap with importing the catalogue
        facts = Facts(host)
        facts.prefetch()
    from checks.registry import all_checks
    from checks.runner import parse_ignore, run_checks

    profile = _profile(args)
    if args.list:
        catalogue = all_checks()
        for cid, spec in catalogue.items():
            if cid in profile.checks:
                print(f"{cid:<28} {profile.checks[cid].severity:<12} {spec.title}")
        return EXIT_OK
    ignore = parse_ignore(args.ignore, profile.checks)
    report = run_checks(host, profile, ignore=ignore, facts=facts)
    fmt = args.format
    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(report.to_document(), indent=2) + "\n")
    elif fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(report.to_document(), sort_keys=False, allow_unicode=True))
    else:
        from .table import render_table, use_color

        import shutil

        width = shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 80
        sys.stdout.write(render_table(report, color=use_color(sys.stdout), width=min(width, 120)))
        if getattr(args, "implied", False):
            print("(no terminal: printed the check table; run kvmprep from a terminal for the wizard)",
                  file=sys.stderr)
    return EXIT_OK if report.ready else EXIT_NOT_READY


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def cmd_wizard(args) -> int:
    """The Textual wizard; textual is imported only here."""
    if not _interactive():
        raise CliError("the wizard needs a terminal (stdin and stdout); without one use: kvmprep check")
    host = _host(args)  # a missing --root folder is a usage error before the screen starts
    answers, profile = None, args.profile
    if getattr(args, "answers", None):
        answers, profile = _wizard_answers(args, host)
    global _ran_wizard
    from .tui import run_wizard
    from .wizard_state import WizardOptions

    options = WizardOptions.detect(root=args.root or "/", profile=profile, ascii=args.ascii, slow=args.slow)
    options.answers = answers
    _ran_wizard = True  # Textual tears itself down normally
    return run_wizard(options)


def _wizard_answers(args, host):
    """``wizard --answers FILE``: checked before the screen starts (exit 2 on a
    bad file); the profile it names, its fixes preselected, its admin user."""
    from .fix_commands import FixError, read_answers

    if args.profile:
        raise CliError("--answers gives the profile: use it without --profile")
    try:
        return read_answers(args.answers, host)
    except FixError as exc:
        raise CliError(str(exc)) from None


def cmd_profiles(args) -> int:
    from checks.profile import builtin_names, load_profile

    profiles = [load_profile(n) for n in builtin_names()]
    if args.format == "json":
        import json

        print(json.dumps([{"name": p.name, "description": p.description, "checks": len(p.checks)}
                          for p in profiles], indent=2))
    else:
        for p in profiles:
            print(f"{p.name:<16} {len(p.checks):>3} checks  {p.description}")
    return EXIT_OK


def _fix_command(args) -> int:
    from checks.files import NotRegular
    from remediations.confined import Escape
    from remediations.plan import PlanError
    from remediations.journal import LockHeld

    from . import fix_commands as fc

    host = _host(args)
    try:
        return {"plan": fc.cmd_plan, "apply": fc.cmd_apply, "undo": fc.cmd_undo}[args.command](args, host)
    except (fc.FixError, PlanError, LockHeld) as exc:
        raise CliError(str(exc)) from None
    except (Escape, NotRegular) as exc:  # kvmprep's state in the root is not what kvmprep made
        raise CliError(f"refused: {exc.filename}: {exc.strerror} (kvmprep's state in {host.display('/var/lib/kvmprep')} "
                       "or its log is not what kvmprep made there)") from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        # no command: the wizard on a terminal, the check table otherwise
        argv = ["wizard" if _interactive() else "check", *argv]
        implied = True
    else:
        implied = False
    if sys.stdout is None or sys.stderr is None:
        if sys.stderr is not None:
            print("kvmprep: standard output is closed: nothing to write the answer to", file=sys.stderr)
        return EXIT_USAGE
    for stream in (sys.stdout, sys.stderr):
        try:  # PYTHONIOENCODING=ascii, a C locale: an é in a file name is escaped, not a crash
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    args = _plain_check_args(argv) or build_parser().parse_args(argv)
    args.implied = implied
    if args.command in ("plan", "apply", "undo", "wizard"):
        from .session import inherit_ssh_connection

        inherit_ssh_connection()  # sudo drops SSH_CONNECTION: an apply must still detach
    from checks.profile import ProfileError
    from checks.runner import UsageError

    try:
        if args.command == "profiles":
            return cmd_profiles(args)
        if args.command == "fleet":
            from .fleet_view import cmd_fleet

            return cmd_fleet(args, CliError)
        if args.command == "bundle":
            from .bundle import cmd_bundle

            return cmd_bundle(args)
        if args.command == "ansible":
            from .ansible_project import cmd_ansible

            return cmd_ansible(args)
        if args.command in ("plan", "apply", "undo"):
            return _fix_command(args)
        if args.command == "wizard":
            return cmd_wizard(args)
        return cmd_check(args)
    except (CliError, ProfileError, UsageError) as exc:
        print(f"kvmprep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kvmprep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): what it wanted was written
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS or getattr(exc, "filename", None):
            return _internal(exc)
        _silence_stdout()
        print(f"kvmprep: cannot write the output: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # never a traceback for the admin
        return _internal(exc)


_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EPIPE, errno.EDQUOT)


def _internal(exc: Exception) -> int:
    if os.environ.get("KVMPREP_DEBUG"):
        raise exc
    try:
        print(f"kvmprep: internal error: {type(exc).__name__}: {exc} "
              "(run with KVMPREP_DEBUG=1 for a traceback, and report it)", file=sys.stderr)
    except (OSError, ValueError):
        pass
    return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Later flushes (at exit) of a stdout that cannot be written must not
    print a traceback of their own."""
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass


def entry() -> None:
    """The console script. After a read-only command has printed its output,
    skip the interpreter's teardown (~15 ms of a ~170 ms check): nothing is
    left to write, and the prefetch threads' answers are no longer needed."""
    argv = sys.argv[1:]
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in (None, "check") and not _interactive():
        # a short run that allocates much and frees little (imports, 41 results): the
        # cyclic collector's passes only cost time here (~2 ms); the process ends soon
        import gc

        gc.disable()
    rc = main(argv)
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _silence_stdout()
    except OSError as exc:  # a full disk or /dev/full behind stdout
        _silence_stdout()
        print(f"kvmprep: cannot write the output: {exc.strerror}", file=sys.stderr)
        rc = rc or EXIT_USAGE
    if command in (None, "check", "profiles", "fleet") and not _ran_wizard:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(rc)
    sys.exit(rc)


_ran_wizard = False


if __name__ == "__main__":
    sys.exit(main())
