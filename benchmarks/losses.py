"""Forward + backward of every registered loss against ``F.cross_entropy``, same logits, same run.

Run by hand (never a test)::

    .venv/bin/python benchmarks/losses.py                       # eager + compiled, 3 shapes
    .venv/bin/python benchmarks/losses.py --shapes 4096x1000 --no-compile --only log,hinge

For each shape (N, C) and loss, rounds alternate between the loss and ``F.cross_entropy``
on the same logits and labels (index targets), so a busy phase of a shared machine slows
both alike; the table prints the median of the per-round ratios loss / CE. ``compiled`` is
``torch.compile(fullgraph=True, dynamic=False)`` of the loss's forward + backward divided by
CE's *eager* time (the issue's goal: <= 1.0). Two-scale losses are attached to a constant
model scale R = 1 (R1 = 1, R2 = 10) and are also reported relative to their base loss
(``log``). ``memory`` is the extra memory a call holds between forward and backward (the
tensors saved for backward, logits excluded) relative to CE's; on CUDA it is the peak
allocation above the inputs. The last line is JSON with every ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from benchmark_results import load_at_start, record

from losslab.losses import LOSSES, TWO_SCALE_LOSSES, get_loss

SHAPES = ((256, 10), (4096, 1000), (1024, 10000))
GOALS = (
    "log <= 1.1 eager; other Janocha/robust <= 1.5 eager, <= 1.0 compiled; "
    "two-scale <= 1.3x base"
)


def _make(name: str) -> torch.nn.Module:
    loss = get_loss(name)
    return loss.attach(1.0) if name in TWO_SCALE_LOSSES else loss


def _step(fn, x: torch.Tensor, t: torch.Tensor):
    def step():
        x.grad = None
        fn(x, t).backward()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _ratio(step, reference, rounds: int, device: torch.device) -> float:
    """Median over rounds of time(step) / time(reference), each round long enough to time."""
    for _ in range(3):
        step()
        reference()
    calls = []
    for _ in range(5):  # the fastest of a few calls: one slowed by a busy neighbour misleads
        _sync(device)
        start = time.perf_counter()
        reference()
        _sync(device)
        calls.append(time.perf_counter() - start)
    inner = max(1, int(0.01 / max(min(calls), 1e-6)))
    ratios = []
    for _ in range(rounds):
        times = []
        for fn in (step, reference):
            _sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            _sync(device)
            times.append(time.perf_counter() - start)
        ratios.append(times[0] / times[1])
    return statistics.median(ratios)


def _saved_bytes(fn, x: torch.Tensor, t: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd keeps for backward, the logits excluded."""
    seen: dict[int, int] = {}

    def pack(tensor):
        if tensor.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn(x, t)
    out.backward()
    x.grad = None
    return sum(seen.values())


def _extra_memory(fn, x, t, device: torch.device) -> int:
    if device.type != "cuda":
        return _saved_bytes(fn, x, t)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    x.grad = None
    fn(x, t).backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    x.grad = None
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join(f"{n}x{c}" for n, c in SHAPES))
    parser.add_argument("--only", default="", help="comma-separated loss names")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-shapes", default="4096x1000",
                        help="shapes to compile at (compiling is slow on 2 cores)")  # fmt: skip
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (0: torch's default); 1 is steadier on a busy "
                             "machine, where OpenMP waits dominate small calls")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = load_at_start()
    device = torch.device(args.device)
    names = [n for n in args.only.split(",") if n] or sorted(LOSSES, key=list(LOSSES).index)
    if "log" not in names and any(n in TWO_SCALE_LOSSES for n in names):
        names.insert(0, "log")
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    compile_shapes = {tuple(int(v) for v in s.split("x")) for s in args.compile_shapes.split(",")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"goals: {GOALS}")
    results: dict[str, dict[str, float]] = {}
    warnings.filterwarnings("ignore")
    for n, c in shapes:
        gen = torch.Generator().manual_seed(0)
        x = (3 * torch.randn(n, c, generator=gen)).to(device).requires_grad_(True)
        t = torch.randint(0, c, (n,), generator=gen).to(device)
        ce = _step(F.cross_entropy, x, t)
        ce_mem = _extra_memory(F.cross_entropy, x, t, device)
        print(f"\n(N, C) = ({n}, {c})")
        print(f"{'loss':<26}{'eager':>8}{'compiled':>10}{'memory':>8}{'x base':>8}")
        for name in names:
            loss = _make(name).to(device)
            row = {"eager": _ratio(_step(loss, x, t), ce, args.rounds, device)}
            row["memory"] = _extra_memory(loss, x, t, device) / max(ce_mem, 1)
            if not args.no_compile and (n, c) in compile_shapes:
                torch._dynamo.reset()
                compiled = torch.compile(_make(name).to(device), fullgraph=True, dynamic=False)
                row["compiled"] = _ratio(_step(compiled, x, t), ce, args.rounds, device)
            if name in TWO_SCALE_LOSSES and "log" in results.get(f"{n}x{c}", {}):
                row["x_base"] = row["eager"] / results[f"{n}x{c}"]["log"]["eager"]
            results.setdefault(f"{n}x{c}", {})[name] = row
            compiled_text = f"{row['compiled']:.2f}" if "compiled" in row else "-"
            base_text = f"{row['x_base']:.2f}" if "x_base" in row else ""
            print(
                f"{name:<26}{row['eager']:>8.2f}{compiled_text:>10}{row['memory']:>8.2f}"
                f"{base_text:>8}",
                flush=True,
            )
    print(json.dumps(results))
    default = [f"{n}x{c}" for n, c in SHAPES]
    if args.only or args.shapes != ",".join(default) or args.no_compile:
        print("not the default run: benchmarks/results/losses.json is left as it is")
        return

    def cell(shape: str, name: str, key: str) -> str:
        row = results[shape][name]
        text = f"{row[key]:.2f}"
        return text + (f" ({row['x_base']:.2f}x log)" if key == "eager" and "x_base" in row
                       else "")

    compiled = sorted(s for s in args.compile_shapes.split(",") if s in results)
    columns = [{"title": "loss", "cell": "`{loss}`"}]
    columns += [{"title": shape, "cell": "{" + f"e{shape}" + "}"} for shape in default]
    columns += [{"title": f"{shape} compiled", "cell": "{" + f"c{shape}" + "}"}
                for shape in compiled]
    columns.append({"title": "memory", "cell": "{memory}"})
    table = []
    for name in names:
        row = {"loss": name, "memory": f"{results[default[-1]][name]['memory']:.2f}"}
        row |= {f"e{shape}": cell(shape, name, "eager") for shape in default}
        row |= {f"c{shape}": cell(shape, name, "compiled") for shape in compiled}
        table.append(row)
    record("losses", columns, table, load, threads=torch.get_num_threads(),
           device=str(device), goals=GOALS)


if __name__ == "__main__":
    main()
