"""Shared test set-up.

The suite runs under pytest-xdist with 2 workers on a 2-core machine: one torch
thread and one BLAS thread per worker, because oversubscribed OpenBLAS threads
spin and can make a 0.1 s test take 20 s. An explicit OMP_NUM_THREADS wins
(``make test-matrix`` runs the numerical tests with 1, 2 and 4 threads).
"""

import os

import torch
from threadpoolctl import threadpool_limits

if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("OMP_NUM_THREADS"):
    threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    torch.set_num_threads(threads)
    threadpool_limits(threads)
