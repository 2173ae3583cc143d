#!/usr/bin/env python3
"""Counts test cases in meson's logs of one or more build folders and prints
"N passed, N failed". Each GoogleTest case counts once (from testlog.junit.xml); a meson test
that failed without recording a failing case (a crash, a sanitizer abort, a time-out) counts
as one failure, and a build folder without logs counts as one failure."""
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def meson_test_name(suite_name):
    # GoogleTest suites are named "<project>.<meson test>.<test class>".
    parts = suite_name.split(".")
    return parts[1] if len(parts) >= 3 else None


passed = failed = 0
for build in sys.argv[1:]:
    logs = Path(build) / "meson-logs"
    junit, testlog = logs / "testlog.junit.xml", logs / "testlog.json"
    if not junit.exists() or not testlog.exists():
        failed += 1
        continue
    tests_with_failing_cases = set()
    for suite in ElementTree.parse(junit).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                name = meson_test_name(suite.get("name", "")) or case.get("name")
                tests_with_failing_cases.add(name)
            elif case.find("skipped") is None:
                passed += 1
    for line in testlog.read_text().splitlines():
        result = json.loads(line)
        if result.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
            continue
        if result.get("name") not in tests_with_failing_cases:
            failed += 1
print(f"{passed} passed, {failed} failed")
