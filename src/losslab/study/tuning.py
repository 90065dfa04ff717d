"""Fair comparisons: every loss gets its own learning rate (and weight decay), chosen on dev.

A loss that trains best at lr 1e-2 compared with one that trains best at 1e-4, both run at
1e-3, says more about the lr than about the losses. The optional ``[tune]`` table of a
study chooses, per loss, the settings on the dev split before the study's seeds run::

    [tune]                              # a grid ...
    lr = [1e-4, 3e-4, 1e-3]
    weight_decay = [0.0, 1e-4]          # optional
    seeds = [100, 101]                  # tuning seeds: disjoint from the study's seeds
    metric = "dev_accuracy"             # or "dev_loss"

    [tune]                              # ... or Optuna's TPE sampler, seeded
    method = "optuna"
    trials = 20                         # per loss (per tuning condition)
    lr = {low = 1e-5, high = 1e-1, log = true}
    seeds = [100, 101]

A *tuning condition* is a cell's configuration without its seed and without the tuned
settings: one loss on one dataset / model / activation / noise / schedule. For each, every
candidate is trained on each tuning seed and scored by the mean of ``metric`` over those
seeds (a candidate with a diverged or failed seed ranks below every other); the best one is
chosen (ties: the first in grid / trial order), and the study's own cells of that condition
run at the chosen values.

Two guarantees, both tested:

* tuning never sees a test label: its trainings get a view of the data whose test split IS
  the dev split (so whatever the engine evaluates as "test" during tuning is dev data);
* tuning never uses a final seed: the tuning seeds must be disjoint from ``seeds``.

Candidates of one condition, and the conditions that differ only in loss, are trained as
one stack (lr and weight decay are per-model settings of the engine). Every tuning training
is stored in the study's SQLite file (tables ``tuning_trials`` and ``tuning_choices``) as
it finishes, so an interrupted run resumes where it stopped.

Seeds: Janocha & Czarnecki 2017, section 3 (every loss at one fixed lr, the practice this
corrects); lecture notes 2018, sections 6.1 (train / dev / test: choose on dev, report on
test) and 7 (hyperparameter search on a log scale for the learning rate).
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from losslab.data import Dataset
from losslab.errors import LosslabError
from losslab.study.executors import DataCache, make_task, train_task
from losslab.study.hashing import content_hash
from losslab.study.plan import DEFAULT_MAX_STACK, Cell, Group, Plan, expand
from losslab.study.spec import TUNABLE, Range, Study, TuneSpec
from losslab.study.store import open_tuning, put_tuning_choices, put_tuning_trials, tuning_trials


def tune_key(config: Mapping[str, Any], tuned: tuple[str, ...]) -> str:
    """The tuning condition of a resolved cell configuration (seed and tuned settings out)."""

    train = {k: v for k, v in config["train"].items() if k not in tuned}
    rest = {k: v for k, v in config.items() if k not in ("seed", "measure", "train")}
    return content_hash({**rest, "train": train, "tuned": list(tuned)})


class DevAsTest:
    """A view of a dataset cache whose datasets have their test split replaced by dev.

    Tuning trains through this view, so no test label (or test input) ever enters it.
    """

    def __init__(self, cache: DataCache):
        self.cache = cache

    def get(self, config: Mapping[str, Any]) -> Dataset:
        data = self.cache.get(config)
        if data.x_dev is None:
            raise LosslabError(
                f"[tune] chooses on the dev split, but dataset {config['name']!r} has none; "
                'give it one, e.g. {name = "' + str(config["name"]) + '", dev_fraction = 0.2}'
            )
        return dataclasses.replace(
            data, x_test=data.x_dev, y_test=data.y_dev, coarse_test=data.coarse_dev
        )


def tune_spec(study: Study) -> TuneSpec:
    """The ``[tune]`` table of a study that tunes (what every caller here requires)."""
    tune = study.spec.tune
    if tune is None:
        raise LosslabError(f"study {study.name!r} has no [tune] table: there is nothing to tune")
    return tune


def tuning_study(study: Study) -> Study:
    """The study the tuning trainings come from: the grid at the tuning seeds.

    The grid method puts the candidate lists in ``[train]`` (each candidate a cell); the
    Optuna method a placeholder (trials set the values). Measurements are not taken.
    """

    tune = tune_spec(study)
    train = dict(study.spec.train)
    for name in tune.tuned:
        values = getattr(tune, name)
        if tune.method == "grid":
            train[name] = list(values)
        else:
            train[name] = values.low if isinstance(values, Range) else values[0]
    spec = study.spec.model_copy(
        update={"seeds": list(tune.seeds), "train": train, "measure": {}, "tune": None}
    )
    return Study(spec, study.path, study.text, study.scale)


def _label(axes: Mapping[str, Any], varying: list[str], tuned: tuple[str, ...]) -> str:
    parts = [str(axes[k]) for k in ("dataset", "model", "activation", "loss")]
    skip = ("dataset", "model", "activation", "loss", "loss_name", "seed", *tuned)
    parts += [
        f"{k}={axes[k]:g}" if isinstance(axes[k], float) else f"{k}={axes[k]}"
        for k in varying
        if k not in skip
    ]
    return " / ".join(parts)


def _score(rows: Sequence[Mapping[str, Any]], tune: TuneSpec) -> float | None:
    """Mean metric over the tuning seeds, or None if a seed diverged, failed or is missing."""
    if len(rows) < len(tune.seeds) or any(
        r["status"] != "done" or r["value"] is None for r in rows
    ):
        return None
    return sum(r["value"] for r in rows) / len(rows)


def run_tuning(
    study: Study,
    out: str | os.PathLike,
    cache: DataCache,
    device: str,
    n_train: Callable[[dict[str, Any]], int] | None = None,
    max_stack: int | None = None,
    stop: threading.Event | None = None,
    on_trained: Callable[[int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Run (or resume) the tuning of ``study`` and return the chosen values.

    Args:
        study: a validated study with a ``[tune]`` table.
        out: the study directory (the tuning tables go into its SQLite file).
        cache: the run's dataset cache.
        device: the device name for the engine.
        n_train, max_stack: as :func:`losslab.study.plan.expand`.
        stop: when set, tuning stops after the current stack.
        on_trained: called with the number of models of each finished stack.

    Returns:
        ``{tune_key: {setting: value}}`` (the tuned settings only) for every tuning
        condition, or ``{}`` when ``stop`` ended tuning early.
    """

    plan = expand(tuning_study(study), n_train, max_stack or DEFAULT_MAX_STACK)
    tuner = _Tuner(study, plan, out, DevAsTest(cache), device, stop, on_trained)
    try:
        if tune_spec(study).method == "grid":
            tuner.grid()
        else:
            tuner.optuna()
        if stop is not None and stop.is_set():
            return {}
        return tuner.choose()
    finally:
        tuner.conn.close()


class _Tuner:
    """The tuning trainings of one study: what each trained model is, and where it goes."""

    def __init__(
        self,
        study: Study,
        plan: Plan,
        out: str | os.PathLike,
        view: DevAsTest,
        device: str,
        stop: threading.Event | None,
        on_trained: Callable[[int], None] | None,
    ):

        self.study, self.tune, self.plan = study, tune_spec(study), plan
        self.view, self.device, self.stop, self.on_trained = view, device, stop, on_trained
        tuned = self.tune.tuned
        # per tuning cell: its condition, loss, seed and settings (rows of tuning_trials)
        self.info = {
            c.cell_id: {
                "tune_key": tune_key(c.config, tuned),
                "condition": _label(c.axes, plan.varying, tuned),
                "loss": c.axes["loss"],
                "seed": c.axes["seed"],
                **{p: c.config["train"][p] for p in TUNABLE},
            }
            for c in plan.cells
        }
        self.keys = list(dict.fromkeys(v["tune_key"] for v in self.info.values()))
        self.conn = open_tuning(out)

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def stored(self) -> dict[str, dict[str, Any]]:
        """The finished tuning trainings of this study's conditions, by trial id."""
        return tuning_trials(self.conn, self.keys)

    def train(self, group: Group, cells: list[Cell]) -> list[dict[str, Any]] | None:
        """Train ``cells`` of ``group`` as one stack on the dev-as-test data; store them.

        Returns the stored rows, or None when the stop event interrupted the stack.
        """

        stack = Group(group.stack_id, cells)
        task = make_task(stack, [c.cell_id for c in cells], self.device, self.study.spec.imports)
        outcomes = train_task(task, self.view, None, self.stop)
        if any(o["status"] == "interrupted" for o in outcomes):
            return None
        rows = [
            {
                **self.info[o["cell_id"]],
                "trial_id": o["cell_id"],
                "method": self.tune.method,
                "metric": self.tune.metric,
                "value": _finite((o.get("final") or {}).get(self.tune.metric)),
                "status": o["status"],
                "error": o.get("error"),
                "finished": time.time(),
            }
            for o in outcomes
        ]
        put_tuning_trials(self.conn, rows)
        if self.on_trained is not None:
            self.on_trained(len(cells))
        return rows

    def grid(self) -> None:
        """Every candidate of the grid on every tuning seed, a stack per group."""
        order: dict[str, dict[tuple, int]] = {}
        for cell in self.plan.cells:
            candidate = tuple(cell.config["train"][p] for p in self.tune.tuned)
            per_key = order.setdefault(self.info[cell.cell_id]["tune_key"], {})
            self.info[cell.cell_id]["trial"] = per_key.setdefault(candidate, len(per_key))
        stored = self.stored()
        for group in self.plan.groups:
            if self.stopped():
                return
            # failed trainings (e.g. out of memory) are retried, as the runner retries cells
            todo = [
                c
                for c in group.cells
                if c.cell_id not in stored or stored[c.cell_id]["status"] == "failed"
            ]
            if todo and self.train(group, todo) is None:
                return

    def optuna(self) -> None:
        """``trials`` rounds; each round asks every condition's TPE sampler for one
        candidate and trains all of a group's candidates x tuning seeds as one stack."""
        import optuna


        tune = self.tune
        distributions = _distributions(tune)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # the tuning plan's cells (one per condition and seed) are templates: a trial
        # changes only their tuned settings
        template: dict[str, dict[int, Cell]] = {}
        group_of: dict[str, Group] = {}
        for group in self.plan.groups:
            for cell in group.cells:
                key = self.info[cell.cell_id]["tune_key"]
                template.setdefault(key, {})[cell.axes["seed"]] = cell
                group_of.setdefault(key, group)
        searches = {
            key: optuna.create_study(
                direction="maximize" if tune.higher_is_better else "minimize",
                sampler=optuna.samplers.TPESampler(
                    seed=(tune.sampler_seed * 1_000_003 + zlib.crc32(key.encode())) % 2**32
                ),
            )
            for key in template
        }
        done = self._replay(searches, distributions)
        groups = list({id(g): g for g in group_of.values()}.values())
        for number in range(min(done.values(), default=0), tune.trials):
            for group in groups:
                keys = [k for k in template if group_of[k] is group and done[k] <= number]
                if self.stopped():
                    return
                if not keys:
                    continue
                asked = {k: searches[k].ask(distributions) for k in keys}
                cells = []
                for key in keys:
                    params = asked[key].params
                    for seed, cell in template[key].items():
                        config = {**cell.config, "train": {**cell.config["train"], **params}}
                        trial_id = content_hash(
                            {"tune_key": key, "trial": number, "seed": seed, "params": params}
                        )
                        cells.append(dataclasses.replace(cell, cell_id=trial_id, config=config))
                        self.info[trial_id] = {**self.info[cell.cell_id], **params, "trial": number}
                rows = self.train(group, cells)
                if rows is None:
                    return  # interrupted: the trial is asked again on resume
                for key in keys:
                    score = _score([r for r in rows if r["tune_key"] == key], tune)
                    if score is None:
                        searches[key].tell(asked[key], state=optuna.trial.TrialState.FAIL)
                    else:
                        searches[key].tell(asked[key], score)
                    done[key] = number + 1

    def _replay(self, searches: dict[str, Any], distributions: dict[str, Any]) -> dict[str, int]:
        """Give each sampler its stored trials; returns how many each has finished."""
        import optuna

        trials: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for row in self.stored().values():
            trials.setdefault(row["tune_key"], {}).setdefault(row["trial"], []).append(row)
        done = dict.fromkeys(searches, 0)
        for key, search in searches.items():
            for number, rows in sorted(trials.get(key, {}).items()):
                if len(rows) < len(self.tune.seeds) or any(r["status"] == "failed" for r in rows):
                    break  # an interrupted or failed trial is asked again from here on
                score = _score(rows, self.tune)
                search.add_trial(
                    optuna.trial.create_trial(
                        params={p: rows[0][p] for p in self.tune.tuned},
                        distributions=distributions,
                        value=score,
                        state=optuna.trial.TrialState.COMPLETE
                        if score is not None
                        else optuna.trial.TrialState.FAIL,
                    )
                )
                done[key] = number + 1
        return done

    def choose(self) -> dict[str, dict[str, float]]:
        """The best candidate per condition (ties: the first); stored in tuning_choices."""
        tune = self.tune
        candidates: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for row in self.stored().values():
            candidates.setdefault(row["tune_key"], {}).setdefault(row["trial"], []).append(row)
        labels = {v["tune_key"]: (v["condition"], v["loss"]) for v in self.info.values()}
        sign = 1.0 if tune.higher_is_better else -1.0
        chosen: dict[str, dict[str, float]] = {}
        records = []
        for key in self.keys:
            mine = candidates.get(key, {})
            scored = [(n, _score(rows, tune), rows) for n, rows in sorted(mine.items())]
            valid = [(n, score, rows) for n, score, rows in scored if score is not None]
            condition, loss = labels[key]
            if not valid:
                raise LosslabError(
                    f"[tune]: every candidate diverged or failed for {condition}; try "
                    "smaller tune.lr values"
                )
            number, score, rows = max(valid, key=lambda t: (sign * t[1], -t[0]))
            chosen[key] = {p: rows[0][p] for p in tune.tuned}
            records.append(
                {
                    "tune_key": key,
                    "condition": condition,
                    "loss": loss,
                    "metric": tune.metric,
                    "score": score,
                    "lr": rows[0]["lr"],
                    "weight_decay": rows[0]["weight_decay"],
                    "candidates": len(mine),
                    "seeds": ",".join(str(s) for s in tune.seeds),
                    "tuned": ",".join(tune.tuned),
                }
            )
        put_tuning_choices(self.conn, records)
        return chosen


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _distributions(tune: TuneSpec) -> dict[str, Any]:
    """Optuna's search space: a float range (log or not) or the listed values."""
    import optuna

    out: dict[str, Any] = {}
    for name in tune.tuned:
        values = getattr(tune, name)
        if isinstance(values, Range):
            out[name] = optuna.distributions.FloatDistribution(
                values.low, values.high, log=values.log
            )
        else:
            out[name] = optuna.distributions.CategoricalDistribution(list(values))
    return out
