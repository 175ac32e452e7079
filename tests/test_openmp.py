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


@pytest.mark.parametrize("load, expected", [(0.2, None), (0.99, None), (1.0, "PASSIVE"), (3.5, "PASSIVE")])
def test_threads_sleep_only_when_the_cpu_is_already_busy(no_torch_yet, monkeypatch, load, expected):
    monkeypatch.setattr(openmp.os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert openmp.choose_wait_policy() == expected
    assert openmp.os.environ.get("OMP_WAIT_POLICY") == expected


def test_a_policy_the_user_set_is_kept(no_torch_yet, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(openmp.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert openmp.choose_wait_policy() is None and openmp.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_nothing_changes_once_torch_is_imported(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", object())
    monkeypatch.setattr(openmp.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert openmp.choose_wait_policy() is None and "OMP_WAIT_POLICY" not in openmp.os.environ


def test_importing_slmbench_decides_before_torch_loads():
    """A fresh interpreter: slmbench's import runs the choice while torch is still unloaded."""
    code = ("import os, sys; os.getloadavg = lambda: (99.0, 0, 0); import slmbench; "
            "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "PASSIVE"]
