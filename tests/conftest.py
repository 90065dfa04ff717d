"""Shared test set-up.

The suite runs under pytest-xdist with 2 workers on a 2-core machine: one torch
thread and one BLAS thread per worker, because oversubscribed OpenBLAS threads
spin and can make a 0.1 s test take 20 s. An explicit OMP_NUM_THREADS wins
(``make test-matrix`` runs the numerical tests with 1, 2 and 4 threads).
"""

import os
import sys

import pytest
import torch
from threadpoolctl import threadpool_limits

if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("OMP_NUM_THREADS"):
    threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    torch.set_num_threads(threads)
    threadpool_limits(threads)


@pytest.fixture
def console(monkeypatch, capsys):
    """``console("run", path, ...)`` runs ``losslab ARGS`` through the console script's entry
    point (``losslab.cli:main``: a LosslabError becomes one line and exit status 2) in this
    process, and returns (exit status, stdout, stderr). For tests of what the command says
    and stores: a subprocess would only add seconds of importing torch, and tests of signals
    and of concurrent processes still start real ones."""
    from losslab import cli

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["losslab", *map(str, args)])
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        said = capsys.readouterr()
        code = exit_.value.code
        return (0 if code is None else code), said.out, said.err

    return run
