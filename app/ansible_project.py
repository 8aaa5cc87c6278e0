"""``kvmprep ansible -o DIR``: a ready Ansible project that runs kvmprep on a fleet.

Admins who outgrow one machine already have a distributed engine; kvmprep
fits into it instead of growing its own SSH runner. The project holds:

- ``site.yml``: copies the single-file bundle (and the answers) to every host,
  collects each host's ``kvmprep check --format json`` on the control node,
  applies the answers only with ``-e kvmprep_apply=true``, and runs ``kvmprep
  fleet`` over the collected reports at the end;
- ``inventory.ini``: an example inventory;
- ``kvmprep.pyz``: this kvmprep as one file (``kvmprep bundle``);
- ``answers.yaml`` / ``profile.yaml`` when given; a README.

The playbook keeps Ansible's conventions: ``--check --diff`` shows each
host's kvmprep preview and changes nothing but kvmprep's own folder (kvmprep
must be on the host to preview; the apply task is a command, which check mode
skips; the preview is read-only and runs anyway); a second
run reports ``changed=0`` (the apply says "Nothing to apply." once the host
is ready; collecting a report is not a change of the host); a failing host
does not stop the others (``kvmprep_max_fail_percentage``); only
ansible.builtin modules, so nothing else has to be installed.
"""

from __future__ import annotations

import os
import sys

SITE = """\
# Prepare KVM hosts with kvmprep. Written by `kvmprep ansible` (kvmprep @VERSION@).
#
#   ansible-playbook -i inventory.ini site.yml                    check every host, collect reports
#   ansible-playbook -i inventory.ini site.yml -e kvmprep_apply=true --check --diff
#                                                                 preview each host's fixes, change nothing
#   ansible-playbook -i inventory.ini site.yml -e kvmprep_apply=true
#                                                                 apply the answers, then check again
#
# Reports land in reports/HOST.json on this machine; `kvmprep fleet` judges them together
# (same kernel, compatible CPUs, QEMU/libvirt versions, unique names and addresses).

- name: kvmprep on each KVM host
  hosts: "{{ kvmprep_hosts | default('kvm_hosts') }}"
  become: "{{ kvmprep_become | default(true) }}"
  gather_facts: false
  max_fail_percentage: "{{ kvmprep_max_fail_percentage | default(100) }}"
  vars:
    # defaults of the variables an inventory may set (play vars would override the inventory's)
    k_apply: "{{ kvmprep_apply | default(false) | bool }}"
    k_dir: "{{ kvmprep_dir | default('/var/lib/kvmprep-ansible') }}"
    k_root: "{{ kvmprep_root | default('/') }}"
    k_python: "{{ kvmprep_python | default('/usr/bin/python3') }}"
    k_profile: "{{ kvmprep_profile | default('@PROFILE@') }}"
    k_answers: "{{ kvmprep_answers | default(@ANSWERS@) }}"
    k_reports: "{{ kvmprep_reports | default(playbook_dir ~ '/reports') }}"
    k_cmd: "{{ [k_python, k_dir ~ '/kvmprep.pyz'] }}"
    k_profile_arg: "{{ (k_dir ~ '/profile.yaml') if k_profile == 'profile.yaml' else k_profile }}"
    k_choice: "{{ ['--answers', k_dir ~ '/' ~ k_answers] if k_answers else ['--profile', k_profile_arg] }}"
  tasks:
    # kvmprep itself goes to its own folder even in check mode: it must run there
    # to preview; nothing else on the host is touched until kvmprep_apply=true
    - name: kvmprep's folder on the host
      ansible.builtin.file:
        path: "{{ k_dir }}"
        state: directory
        mode: "0700"
      check_mode: false

    - name: kvmprep (one file) on the host
      ansible.builtin.copy:
        src: kvmprep.pyz
        dest: "{{ k_dir }}/kvmprep.pyz"
        mode: "0600"
      check_mode: false

    - name: the answers and the profile on the host
      ansible.builtin.copy:
        src: "{{ item }}"
        dest: "{{ k_dir }}/{{ item }}"
        mode: "0600"
      loop: "{{ ([k_answers] if k_answers else []) + (['profile.yaml'] if k_profile == 'profile.yaml' else []) }}"
      check_mode: false

    - name: preview of the fixes (kvmprep plan; changes nothing)
      ansible.builtin.command:
        argv: "{{ k_cmd + ['plan', '--root', k_root] + k_choice }}"
      register: kvmprep_plan
      changed_when: false
      check_mode: false
      when: k_apply | bool

    - name: the preview
      ansible.builtin.debug:
        msg: "{{ kvmprep_plan.stdout_lines }}"
      when: k_apply | bool and (ansible_check_mode or ansible_diff_mode)

    - name: apply the fixes (kvmprep apply; skipped in check mode)
      ansible.builtin.command:
        argv: "{{ k_cmd + ['apply', '--root', k_root, '--yes', '--foreground'] + k_choice }}"
      register: kvmprep_applied
      changed_when: "'Nothing to apply.' not in kvmprep_applied.stdout"
      when: "k_apply | bool and 'Plan: 0 fixes' not in kvmprep_plan.stdout"

    - name: check (kvmprep check --format json)
      ansible.builtin.command:
        argv: "{{ k_cmd + ['check', '--root', k_root, '--profile', k_profile_arg, '--format', 'json'] }}"
      register: kvmprep_check
      changed_when: false
      failed_when: kvmprep_check.rc not in [0, 1]
      check_mode: false

    - name: the report on this machine (reports/HOST.json)
      ansible.builtin.copy:
        content: "{{ kvmprep_check.stdout }}\\n"
        dest: "{{ k_reports }}/{{ inventory_hostname }}.json"
        mode: "0644"
      delegate_to: localhost
      become: false
      changed_when: false  # a report collected is not a change of the host
      check_mode: false

    - name: the host's verdict
      ansible.builtin.debug:
        msg: "{{ (kvmprep_check.stdout | from_json).summary }}"

- name: kvmprep fleet (the checks across hosts)
  hosts: localhost
  gather_facts: false
  become: false
  vars:
    k_reports: "{{ kvmprep_reports | default(playbook_dir ~ '/reports') }}"
    k_profile: "{{ kvmprep_profile | default('@PROFILE@') }}"
    k_profile_arg: "{{ (playbook_dir ~ '/profile.yaml') if k_profile == 'profile.yaml' else k_profile }}"
  tasks:
    - name: the collected reports
      ansible.builtin.find:
        paths: "{{ k_reports }}"
        patterns: "*.json"
      register: kvmprep_found

    - name: fleet checks (kvmprep fleet)
      ansible.builtin.command:
        argv: "{{ [ansible_playbook_python, playbook_dir ~ '/kvmprep.pyz', 'fleet', '--profile', k_profile_arg] + (kvmprep_found.files | map(attribute='path') | sort | list) }}"
      register: kvmprep_fleet
      changed_when: false
      check_mode: false
      failed_when: kvmprep_fleet.rc == 2
      when: kvmprep_found.files | length > 0

    - name: the fleet's verdict
      ansible.builtin.debug:
        msg: "{{ kvmprep_fleet.stdout_lines }}"
      when: kvmprep_found.files | length > 0
"""

INVENTORY = """\
# The KVM hosts kvmprep prepares. Ansible reaches them over SSH as usual;
# kvmprep needs Python 3.9+ on each (kvmprep_python) and runs as root (become).
[kvm_hosts]
kvm01.example.com
kvm02.example.com ansible_host=192.0.2.12
# kvm03.example.com kvmprep_python=/usr/bin/python3.11   # EL8: AppStream's python3.11

[kvm_hosts:vars]
# kvmprep_max_fail_percentage=30   # stop the run when more than 30% of the hosts fail
"""

README = """\
# kvmprep on a fleet (Ansible)

Written by `kvmprep ansible` (kvmprep @VERSION@). Needs only ansible-core on this
machine; each host needs Python 3.9 or newer (set `kvmprep_python` per host).

1. List your hosts in `inventory.ini` (group `kvm_hosts`).
2. Check every host; each one's report lands in `reports/HOST.json` and
   `kvmprep fleet` judges them together:

       ansible-playbook -i inventory.ini site.yml

3. Preview what kvmprep would change on each host (nothing is changed):

       ansible-playbook -i inventory.ini site.yml -e kvmprep_apply=true --check --diff

4. Apply@WHAT@, then check again:

       ansible-playbook -i inventory.ini site.yml -e kvmprep_apply=true

   A second run reports `changed=0` on hosts that are ready. A failing host does
   not stop the others; `-e kvmprep_max_fail_percentage=30` stops the run early.

Variables: `kvmprep_apply` (false), `kvmprep_python` (/usr/bin/python3),
`k_dir` (/var/lib/kvmprep-ansible), `k_root` (/),
`kvmprep_become` (true), `kvmprep_profile` (@PROFILE@), `kvmprep_hosts` (kvm_hosts).
Undo on a host: `python3 /var/lib/kvmprep-ansible/kvmprep.pyz undo`.
"""


class ProjectError(Exception):
    """Bad input or an unwritable folder: one line, exit status 2."""


def write_project(out_dir: str, profile: str | None, answers_path: str | None) -> list[str]:
    """Write the project into ``out_dir`` (created; existing files of the same
    names are replaced, nothing else is touched). Returns the files written."""
    from checks import __version__
    from checks.profile import ProfileError, load_profile
    from remediations.answers import AnswersError, load_answers

    from .bundle import BundleError, build

    answers = None
    if answers_path:
        try:
            answers = load_answers(answers_path)
        except AnswersError as exc:
            raise ProjectError(str(exc)) from None
        if profile:
            raise ProjectError("--answers gives the profile: use it without --profile")
    profile_text = None
    if answers is not None and answers.profile_yaml is not None:
        profile_text, profile_ref = answers.profile_yaml, "profile.yaml"
    elif answers is not None:
        profile_ref = answers.profile
    elif profile and (profile.endswith((".yaml", ".yml")) or os.sep in profile):
        with open(profile, encoding="utf-8") as fh:
            profile_text, profile_ref = fh.read(), "profile.yaml"
    else:
        profile_ref = profile or "generic"
    try:
        if profile_text is None:
            load_profile(profile_ref)  # an unknown name is an error now, not on every host
    except ProfileError as exc:
        raise ProjectError(str(exc)) from None

    try:
        os.makedirs(os.path.join(out_dir, "reports"), exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"{out_dir}: {exc.strerror or exc}") from None
    written = []

    def put(name: str, text: str) -> None:
        path = os.path.join(out_dir, name)
        tmp = f"{path}.kvmprep-{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        written.append(path)

    fill = {"@VERSION@": __version__, "@PROFILE@": profile_ref,
            "@ANSWERS@": "'answers.yaml'" if answers is not None else "''",
            "@WHAT@": " the answers (answers.yaml)" if answers is not None else
                      f" every fix the {profile_ref} profile's failing checks call for"}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    try:
        put("site.yml", filled(SITE))
        put("inventory.ini", INVENTORY)
        put("README.md", filled(README))
        if answers is not None:
            put("answers.yaml", answers.to_yaml())
        if profile_text is not None:
            put("profile.yaml", profile_text)
        bundle = os.path.join(out_dir, "kvmprep.pyz")
        build(bundle)
        written.append(bundle)
    except BundleError as exc:
        raise ProjectError(f"cannot bundle kvmprep: {exc}") from None
    except OSError as exc:
        raise ProjectError(f"{out_dir}: {exc.strerror or exc}") from None
    return written


def cmd_ansible(args) -> int:
    try:
        written = write_project(args.output, args.profile, args.answers)
    except ProjectError as exc:
        print(f"kvmprep: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"next: edit {os.path.join(args.output, 'inventory.ini')}, then:\n"
          f"  cd {args.output} && ansible-playbook -i inventory.ini site.yml")
    return 0
