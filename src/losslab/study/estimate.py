"""The time a plan will take on this machine, from its FLOPs and three rates measured once.

No dataset is loaded and no stack is trained: a stack of M models, batch N, is costed as

* per step: ``M * N * 3 * F / rate`` (forward 1, backward 2 passes of the F FLOPs a sample
  costs one model, counted once per architecture by :func:`model_cost`; convolutions at a
  fraction of the matmul rate) plus
  ``M * P * BYTES_PER_PARAMETER / bandwidth`` (the optimizer and gradient passes over the
  P parameters of each model, memory-bound) plus ``OPS_PER_LAYER * layers * op_seconds``
  (the per-operation dispatch cost of a step, whatever M);
* per evaluation: one forward pass of every model over the evaluated splits;
* once: building the M models.

The three rates (a batched matmul's FLOP/s, a copy's bytes/s, one small op's seconds) are
measured in well under a second the first time, for the thread count the run will use, and
cached per machine in ``$LOSSLAB_CACHE/machine.json`` (default ``~/.cache/losslab``):
identical stacks get identical estimates, and a dry run costs seconds. Delete the file to
measure again (e.g. after the machine changed).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losslab.study.build import build_model
from losslab.study.executors import DataCache
from losslab.study.hashing import canonical_json
from losslab.study.plan import Group, Plan

# Bytes moved per parameter and step beyond the matmuls: Adam reads p, g, m, v and writes
# p, m, v (28 B in float32), the backward pass writes g and zero_grad clears it.
BYTES_PER_PARAMETER = 40.0
# Dispatched operations per layer and step (forward, backward, optimizer, loss, masks).
OPS_PER_LAYER = 40.0
# Convolutions run at this share of the batched-matmul rate on CPU (im2col + GEMM).
CONV_EFFICIENCY = 0.4
# Building one model: seconds per parameter (seeded init draws), and the fixed part.
BUILD_SECONDS_PER_PARAMETER = 2e-8
SETUP_SECONDS = 0.3
CACHE_VERSION = 1
# Model costs by (model, input shape, classes): counting builds the model, and a dry run
# or a policy choice asks for the same few architectures many times.
_COSTS: dict[str, ModelCost | None] = {}


def cache_file() -> Path:
    """``$LOSSLAB_CACHE/machine.json``, default ``~/.cache/losslab/machine.json``."""
    base = os.environ.get("LOSSLAB_CACHE")
    if base:
        return Path(base).expanduser() / "machine.json"
    from losslab.data.locate import cache_dir

    return cache_dir() / "machine.json"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(device: str, threads: int) -> str:
    """What a measurement holds for: host, CPU, torch version, device type, threads."""
    import torch

    return (f"{platform.node()}|{_cpu_name()}|torch {torch.__version__}|{device}|"
            f"{threads} thread(s)")


def measure_rates(device: str = "cpu") -> dict[str, float]:
    """This machine's rates, with torch's current thread count (about 0.3 s when idle).

    Returns:
        ``flops``: FLOP/s of a float32 batched matmul (16, 128, 256) x (16, 256, 256), the
        shape class of stacked MLP layers; ``bandwidth``: bytes/s of a 32 MB tensor copy
        (read + write); ``op_seconds``: seconds of one small elementwise op. Each is the
        best of a few repeats, so a busy moment costs a repeat, not the figure.
    """
    import torch

    # On CPU the clock is this process's CPU time over its threads: another program's load
    # then slows the measurement down but does not change its result.
    cpu = device == "cpu"
    threads = torch.get_num_threads() if cpu else 1

    def best(fn: Callable[[], object], repeats: int = 5) -> float:
        fn()
        times = []
        for _ in range(repeats):
            if not cpu:
                torch.cuda.synchronize()
            start = time.process_time() if cpu else time.perf_counter()
            fn()
            if not cpu:
                torch.cuda.synchronize()
            end = time.process_time() if cpu else time.perf_counter()
            times.append((end - start) / threads)
        return max(min(times), 1e-9)

    a = torch.randn(16, 128, 256, device=device)
    b = torch.randn(16, 256, 256, device=device)
    flops = 4 * 2 * 16 * 128 * 256 * 256 / best(lambda: [torch.bmm(a, b) for _ in range(4)])
    src = torch.randn(8 * 1024 * 1024, device=device)
    dst = torch.empty_like(src)
    bandwidth = 2 * 4 * src.numel() * 2 / best(lambda: [dst.copy_(src) for _ in range(2)])
    small = torch.zeros(8, device=device)
    op_seconds = best(lambda: [small.add_(1.0) for _ in range(200)]) / 200
    return {"flops": flops, "bandwidth": bandwidth, "op_seconds": op_seconds}


def machine_rates(device: str = "cpu", threads: int | None = None) -> dict[str, float]:
    """The cached rates of :func:`measure_rates` for ``device`` at ``threads`` torch
    threads (default: the current count), measured and stored on first use."""
    import torch

    threads = threads or torch.get_num_threads()
    device = "cpu" if device == "cpu" else "cuda"
    key = machine_key(device, threads)
    path = cache_file()
    stored: dict[str, Any] = {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("version") != CACHE_VERSION or not isinstance(stored.get("rates"), dict):
            stored = {}
    except (OSError, ValueError):
        stored = {}
    rates = stored.get("rates", {}).get(key)
    if isinstance(rates, dict) and {"flops", "bandwidth", "op_seconds"} <= set(rates):
        return {k: float(rates[k]) for k in ("flops", "bandwidth", "op_seconds")}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rates = measure_rates(device)
    finally:
        torch.set_num_threads(previous)
    table = stored.get("rates", {})
    table[key] = {**rates, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "rates": table}, indent=1),
                       encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only means measuring again next time
    return rates


@dataclass(frozen=True)
class ModelCost:
    """One model's cost: forward FLOPs per sample (matmul-like and convolution), trainable
    parameters, and layers (modules with parameters)."""

    matmul_flops: float
    conv_flops: float
    parameters: int
    layers: int


def model_cost(model: dict[str, Any], input_shape: Sequence[int],
               num_classes: int) -> ModelCost:
    """Count the cost of the resolved ``model`` configuration on samples of ``input_shape``
    (one forward pass of two samples in evaluation mode, halved).

    Linear layers cost ``2 * in * out`` FLOPs per output row, convolutions
    ``2 * (in_channels / groups) * prod(kernel)`` per output element; hooks read the
    shapes (torch's FlopCounterMode would import the compiler stack, seconds per dry run).
    """
    import torch
    from torch import nn

    options = {k: v for k, v in model.items() if k != "name"}
    net = build_model(model["name"], tuple(input_shape), num_classes, seed=0, **options)
    net.eval()
    counted = {"matmul": 0.0, "conv": 0.0}

    def linear(module: nn.Linear, args: Any, output: torch.Tensor) -> None:
        counted["matmul"] += 2.0 * module.in_features * output.numel()

    def conv(module: nn.modules.conv._ConvNd, args: Any, output: torch.Tensor) -> None:
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        counted["conv"] += 2.0 * per_output * output.numel()

    hooks = []
    for module in net.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear))
        elif isinstance(module, nn.modules.conv._ConvNd):
            hooks.append(module.register_forward_hook(conv))
    try:
        with torch.no_grad():
            net(torch.zeros(2, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
    layers = sum(1 for m in net.modules() if any(True for _ in m.parameters(recurse=False)))
    return ModelCost(counted["matmul"] / 2, counted["conv"] / 2, parameters, max(layers, 1))


def stack_seconds(cost: ModelCost, models: int, config: dict[str, Any], eval_samples: int,
                  rates: dict[str, float]) -> float:
    """Estimated seconds of one stack: ``models`` models of ``cost`` trained by the
    resolved ``config["train"]`` with ``eval_samples`` samples per evaluation."""
    train = config["train"]
    flops_per_sample = (cost.matmul_flops + cost.conv_flops / CONV_EFFICIENCY) / rates["flops"]
    step = (models * train["batch_size"] * 3 * flops_per_sample
            + models * cost.parameters * BYTES_PER_PARAMETER / rates["bandwidth"]
            + OPS_PER_LAYER * cost.layers * rates["op_seconds"])
    evaluations = math.ceil(train["steps"] / train["eval_every"])
    evaluation = models * eval_samples * flops_per_sample
    build = SETUP_SECONDS + models * cost.parameters * BUILD_SECONDS_PER_PARAMETER
    return build + train["steps"] * step + evaluations * evaluation


def estimate_seconds(plan: Plan, cache: DataCache, device: str,
                     threads: int | None = None,
                     rates: dict[str, float] | None = None) -> list[float]:
    """Estimated seconds of every stack of ``plan`` on one worker of this machine.

    Args:
        plan: the expanded study (:func:`~losslab.study.runner.prepare`, ``load=False``
            suffices).
        cache: its datasets' shapes (:meth:`DataCache.describe`; nothing is loaded).
        device: where it would run (``auto``, ``cpu``, ``cuda``).
        threads: torch threads of the worker (default: the current count).
        rates: the rates to cost with (:func:`measure_rates`' keys), e.g. another
            machine's as committed; default this machine's (:func:`machine_rates`).

    Returns:
        One estimate per ``plan.groups`` entry; stacks of the same shape get the same one;
        NaN where the model cannot even be built (the run then records the error).
    """
    if rates is None:
        from losslab.train import resolve_device

        rates = machine_rates(resolve_device(device).type, threads)
    costs = _COSTS
    out = []
    for group in plan.groups:
        out.append(_group_seconds(group, cache, rates, costs))
    return out


def _group_cost(group: Group, cache: DataCache,
                costs: dict[str, ModelCost | None]) -> tuple[ModelCost | None, int]:
    """The model cost of ``group`` (None: it cannot be built) and its samples per
    evaluation."""
    config = group.config
    info = cache.describe(config["dataset"])
    key = canonical_json([config["model"], list(info.input_shape), info.num_classes])
    if key not in costs:
        try:
            costs[key] = model_cost(config["model"], info.input_shape, info.num_classes)
        except Exception:  # noqa: BLE001 - e.g. out of memory: the run records that failure
            costs[key] = None
    samples = info.n_dev + info.n_test + (info.n_train if config["train"].get("eval_train",
                                                                              True) else 0)
    return costs[key], samples


def _group_seconds(group: Group, cache: DataCache, rates: dict[str, float],
                   costs: dict[str, ModelCost | None]) -> float:
    cost, samples = _group_cost(group, cache, costs)
    if cost is None:
        return math.nan
    return stack_seconds(cost, len(group.cells), group.config, samples, rates)


def plan_flops(plan: Plan, cache: DataCache) -> float:
    """FLOPs of training and evaluating every cell of ``plan``: per step
    ``N * 3 * F`` (forward and backward of batch N), per evaluation ``S * F`` (the S
    evaluated samples), F a sample's forward FLOPs with convolutions and matmuls alike;
    NaN when a model cannot be built. What the time estimates scale with; unlike them it
    depends on no machine."""
    costs = _COSTS
    total = 0.0
    for group in plan.groups:
        cost, samples = _group_cost(group, cache, costs)
        if cost is None:
            return math.nan
        train = group.config["train"]
        per_sample = cost.matmul_flops + cost.conv_flops
        evaluations = math.ceil(train["steps"] / train["eval_every"])
        total += len(group.cells) * per_sample * (
            train["steps"] * train["batch_size"] * 3 + evaluations * samples)
    return total


def makespan(seconds: Sequence[float], workers: int, start: float = 0.0) -> float:
    """Wall time of stacks taking ``seconds`` handed in order to the first free of
    ``workers`` workers (as the executors do), each worker ready after ``start`` s."""
    free = [start] * max(1, workers)
    for s in seconds:
        i = min(range(len(free)), key=free.__getitem__)
        free[i] += s
    return max(free) if seconds else 0.0
