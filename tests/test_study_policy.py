"""The thread policy: one torch thread per worker on CPU, worker processes when the plan
is long enough, stacks cut so the workers finish together, user flags obeyed, and the
choice recorded in the run's environment."""

import json
import textwrap

import pytest

from losslab.errors import LosslabError
from losslab.study import load_study, run_study
from losslab.study import policy as P
from losslab.study.estimate import makespan
from losslab.study.executors import DataCache
from losslab.study.plan import restack
from losslab.study.runner import prepare
from losslab.study.store import connect, store_path

STUDY = """
name = "policy"
description = "three groups of 6 cells"
seeds = 3
datasets = ["checkerboard", "spirals", "random_labels"]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
batch_size = 20
steps = 4
eval_every = 4
"""


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(STUDY))
    return prepare(load_study(path), DataCache(), 64, load=False)


def linear(per_model: float, fixed: float = 0.0):
    """Estimates where a stack of m models takes ``fixed + per_model * m`` seconds."""
    def seconds_of(plan, threads):
        return [fixed + per_model * len(g.cells) for g in plan.groups]
    return seconds_of


def test_three_stacks_on_two_workers_are_cut_so_both_finish_together(plan):
    assert [len(g.cells) for g in plan.groups] == [6, 6, 6]
    chosen = P.choose(plan, linear(10.0), executor="auto", jobs=2, threads=None,
                      device_type="cpu", max_stack=64)
    # jobs=2 given: worker processes; 3 stacks of 6 would take 120 s on two workers, six of
    # 3 take 90 s (each worker 3 x 30 s).
    assert chosen.executor == "process" and chosen.jobs == 2 and chosen.threads == 1
    sizes = [len(g.cells) for g in restack(plan, chosen.max_stack).groups]
    assert makespan([10.0 * s for s in sizes], 2) == pytest.approx(90.0)


def test_short_plans_stay_in_process_with_one_thread(plan):
    chosen = P.choose(plan, linear(0.1), executor="auto", jobs=None, threads=None,
                      device_type="cpu", max_stack=64)
    assert (chosen.executor, chosen.jobs, chosen.threads) == ("inprocess", 1, 1)
    assert "too short" in chosen.why or "one usable core" in chosen.why


def test_long_plans_use_one_process_per_core(plan, monkeypatch):
    monkeypatch.setattr(P, "usable_cores", lambda: 2)
    chosen = P.choose(plan, linear(10.0), executor="auto", jobs=None, threads=None,
                      device_type="cpu", max_stack=64)
    assert (chosen.executor, chosen.jobs, chosen.threads) == ("process", 2, 1)
    monkeypatch.setattr(P, "usable_cores", lambda: 1)
    alone = P.choose(plan, linear(10.0), executor="auto", jobs=None, threads=None,
                     device_type="cpu", max_stack=64)
    assert alone.executor == "inprocess"


def test_fixed_costs_per_stack_keep_stacks_whole(plan):
    # A stack's fixed cost of 100 s dwarfs its models: splitting would only add stacks.
    size, _ = P.best_stack_size(plan, lambda p: linear(0.01, 100.0)(p, 1), 2, 64)
    assert [len(g.cells) for g in restack(plan, size).groups] == [6, 6, 6]


def test_flags_override_every_choice(plan):
    explicit = P.choose(plan, linear(10.0), executor="inprocess", jobs=None, threads=3,
                        device_type="cpu", max_stack=64)
    assert (explicit.executor, explicit.threads, explicit.max_stack) == ("inprocess", 3, 64)
    ray = P.choose(plan, linear(10.0), executor="ray", jobs=None, threads=None,
                   device_type="cpu", max_stack=64)
    assert ray.executor == "ray" and ray.jobs is None and ray.threads == 1
    gpu = P.choose(plan, linear(10.0), executor="auto", jobs=None, threads=None,
                   device_type="cuda", max_stack=64)
    assert gpu.executor == "inprocess" and gpu.threads is None
    with pytest.raises(LosslabError, match="unknown executor"):
        P.choose(plan, linear(1.0), executor="threads", jobs=None, threads=None,
                 device_type="cpu", max_stack=64)


def test_the_choice_is_recorded_in_the_run_environment(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(STUDY))
    run_study(load_study(path), tmp_path / "out", device="cpu", threads=1)
    conn = connect(store_path(tmp_path / "out"))
    try:
        (text,) = conn.execute("SELECT environment FROM runs").fetchone()
    finally:
        conn.close()
    env = json.loads(text)
    assert env["parallelism"]["executor"] == "inprocess"
    assert env["parallelism"]["threads"] == 1 and env["threads"] == 1
    assert env["parallelism"]["why"]
