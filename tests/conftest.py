"""Shared test set-up.

The suite runs under pytest-xdist with 2 workers on a 2-core machine: one torch
thread and one BLAS thread per worker, because oversubscribed OpenBLAS threads
spin and can make a 0.1 s test take 20 s.
"""

import os

import torch
from threadpoolctl import threadpool_limits

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    threadpool_limits(1)
