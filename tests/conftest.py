"""Shared test set-up.

The suite runs under pytest-xdist with 2 workers on a 2-core machine; one torch
thread per worker avoids oversubscribing the cores.
"""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
