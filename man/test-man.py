#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks of the man pages and the bash completion, run by meson test.

  test-man.py lint PAGE...
      groff (all warnings) and man --warnings render each page silently.
  test-man.py keys CONFIG_C EXAMPLES_JSON
      santa.conf(5) documents every key the configuration parser accepts
      (the key table of src/common/config.c), and no key it refuses.
  test-man.py completion SANTACTL COMPLETION
      The completion names every command of `santactl --help` and every
      flag of each `santactl help COMMAND`, and completes them in bash.

Exits 77 (skipped) when a tool it needs is not installed.
"""

import json
import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    return 1


def lint(pages):
    if not shutil.which("groff") or not shutil.which("man"):
        print("groff or man is not installed")
        return SKIP
    failed = 0
    for page in pages:
        checks = [
            (["groff", "-ww", "-z", "-t", "-man", page], {}),
            (["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page],
             {"MANWIDTH": "80"}),
            (["man", "--warnings", "-l", page], {"MANWIDTH": "80"}),
        ]
        for argv, env in checks:
            p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(os.environ, LC_ALL="C.UTF-8", **env))
            err = p.stderr.decode("utf-8", "replace").strip()
            if p.returncode != 0 or err:
                failed += fail("%s: %s\n%s" % (page, " ".join(argv), err))
        print("ok %s" % os.path.basename(page))
    return 1 if failed else 0


def keys(config_c, examples_json):
    with open(config_c, encoding="utf-8") as f:
        source = f.read()
    table = re.search(r"config_keys\[\]\s*=\s*\{(.*?)\n\};", source, re.S)
    if not table:
        return fail("no config_keys table in %s" % config_c)
    accepted = set(re.findall(r'\{\s*"([A-Za-z0-9]+)",\s*KEY_', table.group(1)))
    with open(examples_json, encoding="utf-8") as f:
        documented = set(json.load(f))
    failed = 0
    for key in sorted(accepted - documented):
        failed += fail("%s is accepted by the parser but not in santa.conf(5) "
                       "(add it to docs/configuration.md)" % key)
    for key in sorted(documented - accepted):
        failed += fail("%s is in santa.conf(5) but the parser does not know it" % key)
    print("%d keys documented" % len(documented & accepted))
    return 1 if failed else 0


def help_text(santactl, *args):
    p = subprocess.run([santactl, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=30)
    return p.stdout.decode("utf-8", "replace")


def complete(completion, words):
    """What bash completes for WORDS (the last one being completed)."""
    script = r'''
source /usr/share/bash-completion/bash_completion
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_santactl
printf '%s\n' "${COMPREPLY[@]}"
'''
    p = subprocess.run(["bash", "-c", script, "bash", completion, *words],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode())
    return set(p.stdout.decode().split())


def completion(santactl, completion_file):
    with open(completion_file, encoding="utf-8") as f:
        text = f.read()
    commands = re.findall(r"^\s+(\S+) - ", help_text(santactl, "--help"), re.M)
    if not commands:
        return fail("santactl --help lists no commands")
    failed = 0
    for command in commands:
        if not re.search(r"\b%s\b" % re.escape(command), text):
            failed += fail("the completion does not know the command %s" % command)
            continue
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])\b",
                               help_text(santactl, "help", command)))
        for flag in sorted(flags):
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), text):
                failed += fail("the completion does not know %s %s" % (command, flag))
    print("%d commands checked" % len(commands))

    if not os.path.exists("/usr/share/bash-completion/bash_completion"):
        print("bash-completion is not installed: completing in bash not tried")
        return 1 if failed else 0
    cases = [
        (["santactl", ""], set(commands)),
        (["santactl", "--config", "/etc/santa/config.json", "stat"], {"status"}),
        (["santactl", "rule", "--silent"], {"--silent-block"}),
        (["santactl", "fileinfo", "--key", "SHA"], {"SHA-256", "SHA-1"}),
        (["santactl", "help", "fl"], {"flushcache"}),
    ]
    for words, want in cases:
        got = complete(completion_file, words)
        if not want <= got:
            failed += fail("completing %r gave %s, missing %s" % (words, sorted(got),
                                                                   sorted(want - got)))
    return 1 if failed else 0


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    what, args = sys.argv[1], sys.argv[2:]
    if what == "lint":
        return lint(args)
    if what == "keys" and len(args) == 2:
        return keys(*args)
    if what == "completion" and len(args) == 2:
        return completion(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
