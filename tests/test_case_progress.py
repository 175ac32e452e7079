"""bench/case_progress.py, black-box through pytester: one line per bench case, counted as its tests finish.

The cases here are stand-ins (anything with an `id`, as the bench plugin's `bench_case` values have),
so the runs take no model; tests/test_main_job.py sees the lines of a real bench.
"""

import pytest

SUITE = """
import pytest
from types import SimpleNamespace

CASES = [SimpleNamespace(id="m::a"), SimpleNamespace(id="m+lora-fast::a")]


@pytest.mark.parametrize("bench_case, check", [(case, n) for case in CASES for n in range(3)],
                         ids=lambda value: getattr(value, "id", str(value)))
def test_case(bench_case, check):
    if check == 1:
        pytest.skip("not a JSON task")
    assert bench_case.id == "m::a" or check == 0


def test_not_a_case():
    pass
"""


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_suite=SUITE)
    return lambda *args: pytester.runpytest("-p", "no:slmbench.bench.plugin", "-p", "slmbench.bench.case_progress",
                                            "-p", "no:cacheprovider", *args)


def test_with_q_a_case_line_starts_with_its_first_test_and_ends_with_its_tally(run):
    result = run("-q")
    result.stdout.fnmatch_lines(["bench case 1/2 m::a .s. 2 passed, 1 skipped, *s; ~*s left at this pace",
                                 "bench case 2/2 m+lora-fast::a .sF 1 failed, 1 passed, 1 skipped, *s"], consecutive=True)


def test_without_q_a_case_line_is_written_whole_when_it_finishes(run):
    result = run("-v")
    result.stdout.fnmatch_lines(["*test_case*m::a-2* PASSED*", "bench case 1/2 m::a: 2 passed, 1 skipped, *s; *",
                                 "*test_case*m+lora-fast::a-0* PASSED*", "*test_case*m+lora-fast::a-2* FAILED*",
                                 "bench case 2/2 m+lora-fast::a: 1 failed, 1 passed, 1 skipped, *s"])


def test_a_case_whose_tests_errored_exits_with_its_own_status_and_a_failure_does_not(pytester):
    from slmbench.bench.case_progress import CASE_ERRORS

    pytester.makepyfile(test_suite=SUITE + """

@pytest.fixture
def broken():
    pytest.fail("could not evaluate the case", pytrace=False)


@pytest.mark.parametrize("bench_case", [SimpleNamespace(id="m::b")], ids=lambda value: value.id)
def test_errors(bench_case, broken):
    pass
""")
    options = ["-p", "no:slmbench.bench.plugin", "-p", "slmbench.bench.case_progress", "-p", "no:cacheprovider", "-q"]
    errored = pytester.runpytest(*options)
    assert errored.ret == CASE_ERRORS
    errored.stdout.fnmatch_lines(["*bench: 1 tests errored (cases that could not be evaluated*"])
    assert pytester.runpytest(*options, "-k", "not errors").ret == pytest.ExitCode.TESTS_FAILED

