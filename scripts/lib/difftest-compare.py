#!/usr/bin/env python3
"""Compares the outputs of scripts/lib/difftest.lua on this module and on
OpenResty's, line by line, for scripts/difftest.sh.

    difftest-compare.py OURS THEIRS LABEL   appends a report to stdout;
                                            exits 1 on a difference that
                                            is not allowed
    difftest-compare.py --summary REPORT    prints the totals of a report

A line is "N method(arguments) -> results". ALLOWED below is the one list
of differences that do not fail the test, each with its reason; the README
("Differential testing") lists the same.
"""

import os
import re
import sys

def ffi_conversion_error(method, args, ours, theirs):
    """An argument of the wrong type reaches OpenResty's FFI call, which
    raises LuaJIT's conversion error ("cannot convert 'table' to
    'double'"...): an accident of its binding. This module raises or
    returns its own argument error."""
    return theirs.startswith("error: ") and "cannot convert" in theirs \
        and ours.startswith(("error: ", "nil ", "false "))


# name -> rule
ALLOWED = {
    "FFI conversion error": ffi_conversion_error,
}

LINE = re.compile(r"^(\d+) (\w+)\((.*)\) -> (.*)$")


def split(line):
    match = LINE.match(line)
    if not match:
        return None, None, line
    return match.group(2), match.group(3), match.group(4)


def compare(ours_path, theirs_path, label):
    with open(ours_path, encoding="latin-1") as f:
        ours = f.read().splitlines()
    with open(theirs_path, encoding="latin-1") as f:
        theirs = f.read().splitlines()
    allowed = {}
    failures = []
    if len(ours) != len(theirs):
        failures.append(f"{len(ours)} lines here, {len(theirs)} on OpenResty")
    for mine, other in zip(ours, theirs):
        if mine == other:
            continue
        method, args, my_result = split(mine)
        other_method, other_args, their_result = split(other)
        if method is None or (method, args) != (other_method, other_args):
            failures.append(f"the sequences diverged:\n    ours:      {mine}\n    openresty: {other}")
            break
        for name, rule in ALLOWED.items():
            if rule(method, args, my_result, their_result):
                allowed[name] = allowed.get(name, 0) + 1
                break
        else:
            failures.append(f"{mine}\n    openresty: {their_result}")
    print(f"== {label}: {len(ours)} calls, {len(failures)} differences not allowed")
    for name, count in sorted(allowed.items()):
        print(f"allowed: {name}: {count}")
    for failure in failures[:int(os.environ.get("DIFFTEST_SHOW", "20"))]:
        print(f"DIFFERENT: {failure}")
    return 1 if failures else 0


def summary(report_path):
    runs = calls = different = 0
    allowed = {}
    with open(report_path, encoding="latin-1") as f:
        lines = f.read().splitlines()
    for line in lines:
        match = re.match(r"^== .*: (\d+) calls, (\d+) differences", line)
        if match:
            runs += 1
            calls += int(match.group(1))
            different += int(match.group(2))
        match = re.match(r"^allowed: (.*): (\d+)$", line)
        if match:
            allowed[match.group(1)] = allowed.get(match.group(1), 0) + int(match.group(2))
    for line in lines:
        if line.startswith(("== ", "DIFFERENT", "    ")) and different:
            print(line)
    print(f"difftest: {runs} sequences, {calls} calls; differences not allowed: {different}; "
          + "allowed: " + (", ".join(f"{n} {c}" for n, c in sorted(allowed.items())) or "none"))


def main():
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
        return 0
    return compare(sys.argv[1], sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
