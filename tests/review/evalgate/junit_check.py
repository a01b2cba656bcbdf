"""JUnit XML checked against the structure of the JUnit schema (testsuites > testsuite > testcase, each testcase with
at most one failure, error or skipped), and read back as {test name: (status, message)}."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

_RESULTS = {"failure", "error", "skipped"}
_CASE_CHILDREN = _RESULTS | {"system-out", "system-err"}
_SUITE_CHILDREN = {"properties", "testcase", "system-out", "system-err"}


def parse_junit(path: Path) -> dict[str, tuple[str, str, str]]:
    """Every testcase of the file as name -> (status, type, message); asserts the schema's structure."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = list(root)
    assert suites and all(suite.tag == "testsuite" for suite in suites)
    out: dict[str, tuple[str, str, str]] = {}
    for suite in suites:
        for key in ("name", "tests", "failures", "errors", "time"):
            assert key in suite.attrib, key
        assert {child.tag for child in suite} <= _SUITE_CHILDREN
        cases = suite.findall("testcase")
        tally = {"failure": 0, "error": 0, "skipped": 0}
        for testcase in cases:
            assert {"name", "classname", "time"} <= testcase.attrib.keys()
            float(testcase.attrib["time"])
            children = [child.tag for child in testcase]
            assert set(children) <= _CASE_CHILDREN, children
            results = [child for child in testcase if child.tag in _RESULTS]
            assert len(results) <= 1
            if results:
                tally[results[0].tag] += 1
                if results[0].tag != "skipped":
                    assert "message" in results[0].attrib and "type" in results[0].attrib
                status = results[0].tag
                kind, message = results[0].get("type", ""), results[0].get("message", "")
            else:
                status, kind, message = "passed", "", ""
            assert testcase.attrib["name"] not in out, "duplicate testcase"
            out[testcase.attrib["name"]] = (status, kind, message)
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == tally["failure"]
        assert int(suite.attrib["errors"]) == tally["error"]
        assert int(suite.attrib.get("skipped", 0)) == tally["skipped"]
    return out
