"""The OpenMP wait policy slmbench picks before torch loads (slmbench/openmp.py)."""

import subprocess
import sys

import pytest

from slmbench import openmp


@pytest.fixture
def no_torch_yet(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(openmp.sys, "modules", {k: v for k, v in sys.modules.items() if k != "torch"})
    monkeypatch.setattr(openmp.os, "cpu_count", lambda: 2)


@pytest.mark.parametrize("busy, expected", [(0, None), (0.5, None), (1, "PASSIVE"), (3, "PASSIVE")])
def test_threads_sleep_only_when_the_cpu_is_already_busy(no_torch_yet, monkeypatch, busy, expected):
    monkeypatch.setattr(openmp, "busy_elsewhere", lambda: busy)
    assert openmp.choose_wait_policy() == expected
    assert openmp.os.environ.get("OMP_WAIT_POLICY") == expected


def test_a_policy_the_user_set_is_kept(no_torch_yet, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(openmp, "busy_elsewhere", lambda: 9)
    assert openmp.choose_wait_policy() is None and openmp.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_runnable_count_leaves_this_process_out(monkeypatch):
    monkeypatch.setattr(openmp.Path, "read_text", lambda self: "0.80 1.90 2.10 3/412 9999")
    monkeypatch.setattr(openmp.time, "sleep", lambda s: None)
    assert openmp.busy_elsewhere() == 2


def test_nothing_changes_once_torch_is_imported(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", object())
    monkeypatch.setattr(openmp, "busy_elsewhere", lambda: 9)
    assert openmp.choose_wait_policy() is None and "OMP_WAIT_POLICY" not in openmp.os.environ


def test_importing_slmbench_decides_before_torch_loads():
    """A fresh interpreter: slmbench's import runs the choice while torch is still unloaded."""
    code = ("import os, sys, pathlib; real = pathlib.Path.read_text; "
            "pathlib.Path.read_text = lambda p, *a, **k: '9.0 9.0 9.0 9/300 1' if str(p) == '/proc/loadavg' "
            "else real(p, *a, **k); import slmbench; print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "PASSIVE"]
