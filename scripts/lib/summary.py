#!/usr/bin/env python3
"""Summarise ctest JUnit reports: a table per suite, one closing line
"N passed, M failed, K skipped", and build/test-summary.json."""
import argparse
import json
import sys
import xml.etree.ElementTree as ET


def suite_of(name):
    """Suites of the summary, from the dotted ctest name."""
    for prefix, suite in (("kernel.kunit.", "kunit"), ("guest.hmm-tests.", "hmm-tests"),
                          ("guest.kfd.", "kfd")):
        if name.startswith(prefix):
            return suite
    return name.split(".", 1)[0]


def outcome_of(case):
    if case.find("failure") is not None or case.get("status") == "fail":
        return "failed"
    if case.find("skipped") is not None or case.get("status") in ("notrun", "disabled"):
        return "skipped"
    return "passed"


# What scripts/check counted in the guest run, one line per checker.
CHECKER_LINES = (
    ("kasan", "{reports} reports in the guest kernel log"),
    ("kmemleak", "{leaks} suspected leaks after the guest run"),
    ("faultinject", "{injected} injected allocation failures met cleanly in {operations} operations"),
    ("trinity", "{syscalls} fuzzed system calls in {seconds} s beside the device stress"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", required=True)
    parser.add_argument("--kernel-version", default="")
    parser.add_argument("--patches", type=int, default=0)
    parser.add_argument("--build-seconds", type=int, default=0)
    parser.add_argument("--checkers", help="JSON with what the kernel checkers counted")
    parser.add_argument("junit", nargs="+")
    args = parser.parse_args()

    suites = {}
    for path in args.junit:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as err:
            print(f"summary: cannot read {path}: {err}", file=sys.stderr)
            return 2
        for case in root.iter("testcase"):
            name = case.get("name")
            entry = suites.setdefault(suite_of(name),
                                      {"passed": 0, "failed": 0, "skipped": 0, "tests": {}})
            result = outcome_of(case)
            entry[result] += 1
            entry["tests"][name] = result

    order = ["host", "asan", "kernel", "kunit", "guest", "hmm-tests", "kfd"]
    names = sorted(suites, key=lambda s: (order.index(s) if s in order else len(order), s))
    print()
    print(f"{'suite':<12} {'passed':>7} {'failed':>7} {'skipped':>8}")
    print("-" * 37)
    for name in names:
        s = suites[name]
        print(f"{name:<12} {s['passed']:>7} {s['failed']:>7} {s['skipped']:>8}")
    totals = {k: sum(s[k] for s in suites.values()) for k in ("passed", "failed", "skipped")}
    print("-" * 37)
    failed = [t for s in suites.values() for t, r in s["tests"].items() if r == "failed"]
    for test in sorted(failed):
        print(f"FAILED: {test}")
    checkers = {}
    if args.checkers:
        try:
            with open(args.checkers) as f:
                checkers = json.load(f)
        except (OSError, ValueError) as err:
            print(f"summary: cannot read {args.checkers}: {err}", file=sys.stderr)
    for key, text in CHECKER_LINES:
        if key in checkers:
            print(f"{key:<12} {text.format(**checkers[key])}")
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")

    summary = {"suites": {n: suites[n] for n in names}, "checkers": checkers,
               "kernel": {"version": args.kernel_version, "patches": args.patches,
                          "build_seconds": args.build_seconds}}
    with open(args.json, "w") as out:
        json.dump(summary, out, indent=1, sort_keys=True)
        out.write("\n")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
