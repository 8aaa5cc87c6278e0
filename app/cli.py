"""``kvmprep``: the command line. Imports nothing heavy on the check path."""

from __future__ import annotations

import argparse
import os
import sys

from checks import __version__

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class CliError(Exception):
    """Bad usage or bad input: printed as one line, exit status 2."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", metavar="DIR", default=None,
                   help="inspect the system under DIR (a mounted disk, chroot or captured dump) instead of /")
    p.add_argument("--profile", metavar="NAME|PATH", default=None,
                   help="which requirements apply: a built-in profile name or a .yaml file (default: generic)")


def build_parser() -> argparse.ArgumentParser:
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

    prof = sub.add_parser("profiles", help="list the built-in profiles",
                          description="List the built-in profiles.")
    prof.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _host(args):
    from checks.host import Host

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
    return EXIT_OK if report.ready else EXIT_NOT_READY


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        # no command: the wizard will start here once it exists; until then, check
        argv = ["check", *argv]
    args = parser.parse_args(argv)
    from checks.profile import ProfileError
    from checks.runner import UsageError

    try:
        if args.command == "profiles":
            return cmd_profiles(args)
        return cmd_check(args)
    except (CliError, ProfileError, UsageError) as exc:
        print(f"kvmprep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kvmprep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # never a traceback for the admin
        if os.environ.get("KVMPREP_DEBUG"):
            raise
        print(f"kvmprep: internal error: {type(exc).__name__}: {exc} "
              "(run with KVMPREP_DEBUG=1 for a traceback, and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
