"""The bench suite: every model (and model + adapter) × task is a case; run it with `pytest bench`.

Options are in the "bench" group of `pytest bench --help` (``--bench-models``, ``--bench-tasks``,
``--bench-limit`` ...). Generation happens once per case; each test below reads the same outputs.
"""

import pytest


def test_json_valid(bench_outcome):
    passed, message = bench_outcome.threshold_check("json_valid")
    assert passed, message


def test_schema_conforms(bench_outcome):
    passed, message = bench_outcome.threshold_check("schema_valid")
    assert passed, message


def test_metric(bench_outcome, bench_metric):
    passed, message = bench_outcome.threshold_check(bench_metric)
    assert passed, message


# tokens/s comes from the case's own generation (or the cache); the benchmark fixture only times when
# re-timing is asked for (--bench-retime), so pytest-benchmark must not warn that it went unused
@pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")
def test_tokens_per_sec(bench_session, bench_case, benchmark):
    tokens_per_sec = bench_session.measure_speed(bench_case, benchmark)
    assert tokens_per_sec > 0, f"{bench_case.id}: no tokens were generated while timing"


def test_no_regression(bench_outcome):
    passed, message = bench_outcome.regression_check()
    assert passed, message
