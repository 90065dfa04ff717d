"""From a study to cells and stacks: grid expansion, exclusion, content hashes, grouping.

A *cell* is one model trained once: one value of every axis and one seed. Its key is a
hash of its fully resolved configuration (every default filled in), its seed and the
losslab version, so a rerun finds stored cells and any changed value makes a new cell
(joblib ``Memory`` style). Its *condition* is the same without the seed: the seeds of a
condition are its replicates.

Cells that differ only in loss, seed, learning rate or weight decay share data,
architecture and schedule: they form one *group*, trained by ONE
:func:`~losslab.train.train_many` call (common random numbers: a seed gives the same
initial weights and batches whatever the loss). Large groups are cut into stacks of at
most ``max_stack`` models, because past ~100 toy models the optimizer state makes a step
memory-bound (measured: 60 models ~1600 model-steps/s, 240 ~1430, 960 ~755).

Seed: Janocha & Czarnecki 2017 §3 (losses x depths x datasets x noise, compared over seeds).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from losslab import __version__
from losslab.provenance import jsonable
from losslab.study.hashing import canonical_json, content_hash
from losslab.study.spec import (
    MODEL_DERIVED,
    NOISE_FIELDS,
    Item,
    Study,
    measurement_registry,
    model_engine,
    registry_key,
    train_axes,
)

# The runner's share of TrainConfig that never changes a result (or is the cell's seed).
_TRAIN_UNHASHED = ("seed", "device", "checkpoint_path", "checkpoint_every", "checkpoint_seconds",
                   "resume")
# Per-model settings of one stack (ModelSpec fields).
PER_MODEL = ("lr", "weight_decay")
DEFAULT_MAX_STACK = 64


def _defaults(func: Callable[..., Any], skip: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name, p in inspect.signature(func).parameters.items():
        if name in skip or name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.default is not p.empty:
            out[name] = jsonable(p.default)
    return out


def _resolve_loss(item: Item) -> dict[str, Any]:
    from losslab.losses import LOSSES

    key = registry_key("loss", item.name)
    return {"name": key, **_defaults(LOSSES[key], ("validate",)), **jsonable(item.options)}


def _resolve_activation(item: Item) -> dict[str, Any]:
    from losslab.activations import ACTIVATIONS

    key = registry_key("activation", item.name)
    return {"name": key, **_defaults(ACTIVATIONS[key], ()), **jsonable(item.options)}


def _resolve_model(item: Item, activation: dict[str, Any]) -> dict[str, Any]:
    from losslab.models import MODELS

    key = registry_key("model", item.name)
    skip = (*MODEL_DERIVED, "activation", "activation_kwargs")
    options = {k: v for k, v in item.options.items() if k != "engine"}
    resolved = {"name": key, **_defaults(MODELS[key], skip), **jsonable(options)}
    resolved["activation"] = activation["name"]
    resolved["activation_kwargs"] = {k: v for k, v in activation.items() if k != "name"}
    return resolved


def _resolve_dataset(item: Item, noise: dict[str, Any]) -> dict[str, Any]:
    from losslab.data import DATASETS, load_dataset

    key = registry_key("dataset", item.name)
    resolved = {
        "name": key,
        **_defaults(load_dataset, ("name", "root")),
        **_defaults(DATASETS[key], ("root", "rng")),
        **jsonable(item.options),
        **noise,
    }
    resolved["seed"] = 0
    return resolved


def item_label(kind: str, item: Item) -> str:
    """A short display label: ``alpha(alpha=4)``, ``mlp[200x2]``, ``mlp[](dropout=0.5)``."""
    key = registry_key(kind, item.name)
    options = dict(item.options)
    if kind == "model":
        options.pop("engine", None)
    text = key
    if kind == "model" and key == "mlp":
        hidden = list(options.pop("hidden", []))
        if hidden and len(set(hidden)) == 1:
            text += f"[{hidden[0]}x{len(hidden)}]"
        else:
            text += "[" + ",".join(str(h) for h in hidden) + "]"
    if options:
        text += "(" + ", ".join(f"{k}={_short(v)}" for k, v in options.items()) + ")"
    return text


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


@dataclass
class Cell:
    """One model trained once.

    Attributes:
        cell_id: content hash of ``config`` (which includes the seed and losslab version).
        condition_id: hash of ``config`` without the seed.
        condition: a short human label of the condition.
        group_id: hash of what the cells of one train_many call share.
        position: place in the grid order of the study file.
        config: the fully resolved configuration (dataset, model, loss, train, seed, ...).
        axes: the value of every axis column (labels for dataset/model/activation/loss).
    """

    cell_id: str
    condition_id: str
    condition: str
    group_id: str
    position: int
    config: dict[str, Any]
    axes: dict[str, Any]
    stack_id: str = ""


@dataclass
class Group:
    """Cells trained by ONE train_many call: ``stack_id`` names the chunk of its group."""

    stack_id: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        """The shared configuration (dataset, model, train without lr/weight decay)."""
        return self.cells[0].config


@dataclass
class Plan:
    """Every cell of a study at one scale, in grid order, and their stacks.

    Attributes:
        cells: the cells after exclusion; ``excluded``: how many rules dropped.
        groups: the stacks (train_many calls), each a list of cells.
        varying: the axis columns taking more than one value.
    """

    cells: list[Cell]
    groups: list[Group]
    excluded: int
    varying: list[str]


def _matches(
    rule_value: Any, column: str, axes: Mapping[str, Any], names: Mapping[str, Any]
) -> bool:
    value = axes.get(column)
    if column in ("dataset", "model", "activation", "loss"):
        if isinstance(rule_value, Mapping):
            item = names[column]
            want = dict(rule_value)
            name = want.pop("name", item.name)
            return registry_key(column, str(name)) == registry_key(column, item.name) and all(
                item.options.get(k) == v for k, v in want.items()
            )
        text = str(rule_value).strip().lower().replace("-", "_")
        return text in (value, registry_key(column, names[column].name)) if text else False
    if isinstance(value, (int, float)) and isinstance(rule_value, (int, float)):
        return math.isclose(float(value), float(rule_value), rel_tol=1e-12, abs_tol=0.0)
    return value == rule_value


def _train_value(config: Any, name: str) -> Any:
    value = getattr(config, name)
    return list(value) if isinstance(value, tuple) else value


def expand(study: Study, n_train: Callable[[dict[str, Any]], int] | None = None,
           max_stack: int = DEFAULT_MAX_STACK,
           tuned: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None) -> Plan:
    """The cells of ``study`` (grid product minus ``[[exclude]]``) and their stacks.

    Args:
        study: a validated :class:`~losslab.study.spec.Study`.
        n_train: resolved dataset config -> number of training samples; needed only when
            the study gives ``epochs`` (steps = ceil(epochs * n_train / batch_size)).
        max_stack: most models in one train_many call.
        tuned: resolved cell configuration (without the seed) -> the TrainConfig values
            chosen for it by ``[tune]`` (:mod:`~losslab.study.tuning`), applied before
            the cell is hashed.

    Returns:
        The :class:`Plan`.
    """
    from losslab.train import TrainConfig

    spec = study.spec
    train = train_axes(spec.train)
    train_keys = list(train)
    noise_axes = {k: _as_list(getattr(spec.noise, k)) for k in NOISE_FIELDS}
    measure = _resolve_measure(spec.measure)
    labels = {
        "dataset": _labels("dataset", spec.datasets),
        "model": _labels("model", spec.models),
        "activation": _labels("activation", spec.activations),
        "loss": [item_label("loss", i) for i in spec.losses],
    }
    # Each axis entry is resolved once; the product only combines them.
    losses = [_resolve_loss(item) for item in spec.losses]
    activations = [_resolve_activation(item) for item in spec.activations]
    models = [[_resolve_model(m, a) for a in activations] for m in spec.models]
    engines = [model_engine(spec, m) for m in spec.models]
    # Only npnet cells carry their engine: torch cells keep the keys they had before.
    engine_axis = "npnet" in engines
    noises = [dict(zip(NOISE_FIELDS, v, strict=True))
              for v in itertools.product(*noise_axes.values())]
    datasets = [[_resolve_dataset(d, n) for n in noises] for d in spec.datasets]
    trainings = []
    for values in itertools.product(*train.values()):
        chosen = dict(zip(train_keys, values, strict=True))
        epochs = chosen.pop("epochs", None)
        config = TrainConfig(**chosen, device="cpu")
        trainings.append((epochs, config, _train_dict(config)))
    cells: list[Cell] = []
    excluded = 0
    position = 0
    product = itertools.product(
        enumerate(spec.datasets),
        enumerate(noises),
        enumerate(spec.models),
        enumerate(spec.activations),
        trainings,
        enumerate(spec.losses),
        spec.seed_list,
    )
    for (di, ds), (ni, noise), (mi, mo), (ai, act), training, (li, lo), seed in product:
        epochs, config, train_cfg = training
        dataset = datasets[di][ni]
        if epochs is not None:
            if n_train is None:
                raise study.fail("train.epochs", "epochs need the dataset sizes; give steps")
            size = n_train(dataset)
            config = copy.copy(config)
            config.steps = max(1, math.ceil(epochs * size / min(config.batch_size, size)))
            train_cfg = _train_dict(config)
        if tuned is not None:
            chosen_values = tuned({"losslab": __version__, "dataset": dataset,
                                   "model": models[mi][ai], "loss": losses[li],
                                   "train": train_cfg})
            config = copy.copy(config)
            for key, value in chosen_values.items():
                setattr(config, key, value)
            train_cfg = _train_dict(config)
        resolved = {
            "losslab": __version__,
            "dataset": dataset,
            "model": models[mi][ai],
            "loss": losses[li],
            "train": train_cfg,
            "seed": seed,
        }
        if measure:
            resolved["measure"] = measure
        if engines[mi] != "torch":
            resolved["engine"] = engines[mi]
        axes = {
            "dataset": labels["dataset"][di],
            "model": labels["model"][mi],
            "activation": labels["activation"][ai],
            "loss": labels["loss"][li],
            "loss_name": losses[li]["name"],
            "optimizer": config.optimizer,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "label_noise_rate": float(noise["label_noise_rate"]),
            "label_noise_kind": noise["label_noise_kind"],
            "input_noise_eps": float(noise["input_noise_eps"]),
            "steps": config.steps,
            "seed": seed,
        }
        if engine_axis:
            axes["engine"] = engines[mi]
        for key in train_keys:
            if key not in axes and len(train[key]) > 1:
                axes[key] = epochs if key == "epochs" else _train_value(config, key)
        names = {"dataset": ds, "model": mo, "activation": act, "loss": lo}
        if any(all(_matches(v, k, axes | {"epochs": epochs}, names) for k, v in rule.items())
               for rule in spec.exclude):
            excluded += 1
            continue
        no_seed = {k: v for k, v in resolved.items() if k != "seed"}
        shared = {**no_seed, "loss": None,
                  "train": {k: v for k, v in train_cfg.items() if k not in PER_MODEL}}
        cells.append(
            Cell(
                cell_id=content_hash(resolved),
                condition_id=content_hash(no_seed),
                condition="",
                group_id=content_hash(shared),
                position=position,
                config=resolved,
                axes=axes,
            )
        )
        position += 1
    if not cells:
        raise study.fail("exclude", "the exclude rules drop every cell; loosen them")
    _check_unique(study, cells)
    varying = [
        k for k in _axis_columns(cells) if len({_hashable(c.axes.get(k)) for c in cells}) > 1
    ]
    for cell in cells:
        cell.condition = _condition_label(cell.axes, varying)
    return Plan(cells, _stacks(cells, max_stack), excluded, varying)


def _train_dict(config: Any) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in _TRAIN_UNHASHED}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _hashable(value: Any) -> Any:
    return canonical_json(value) if isinstance(value, (list, dict)) else value


def _labels(kind: str, items: list[Item]) -> list[str]:
    """Labels of an axis; dataset/activation options are shown only to tell entries apart."""
    plain = [registry_key(kind, i.name) for i in items]
    if kind == "model":
        return [item_label(kind, i) for i in items]
    return [
        item_label(kind, item) if plain.count(name) > 1 else name
        for item, name in zip(items, plain, strict=True)
    ]


def _axis_columns(cells: list[Cell]) -> list[str]:
    seen: dict[str, None] = {}
    for cell in cells:
        for key in cell.axes:
            seen.setdefault(key, None)
    return [k for k in seen if k != "loss_name"]


def _condition_label(axes: Mapping[str, Any], varying: list[str]) -> str:
    parts = [str(axes[k]) for k in ("dataset", "model", "activation", "loss")]
    parts += [f"{k}={_short(axes[k])}" for k in varying
              if k not in ("dataset", "model", "activation", "loss", "seed")]
    return " / ".join(parts)


def _check_unique(study: Study, cells: list[Cell]) -> None:
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.cell_id in seen:
            other = seen[cell.cell_id]
            raise study.fail(
                "(grid)",
                f"two entries resolve to the same cell ({other.axes['dataset']} / "
                f"{other.axes['model']} / {other.axes['activation']} / {other.axes['loss']}, "
                f"seed {cell.axes['seed']}); remove the duplicate entry",
            )
        seen[cell.cell_id] = cell


def _stacks(cells: list[Cell], max_stack: int) -> list[Group]:
    """Cells grouped by group_id (first-appearance order), cut into near-equal stacks."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group_id, []).append(cell)
    out = []
    for group_id, members in groups.items():
        parts = math.ceil(len(members) / max_stack)
        size = math.ceil(len(members) / parts)
        for k in range(parts):
            stack = Group(f"{group_id}-{k}", members[k * size : (k + 1) * size])
            for cell in stack.cells:
                cell.stack_id = stack.stack_id
            out.append(stack)
    return out


def _resolve_measure(measure: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[measure]`` entries that run (a cell's key covers what it records)."""
    if measurement_registry() is None:
        return {}
    return {k: (v if isinstance(v, dict) else {}) for k, v in measure.items() if v is not False}


def restack(plan: Plan, max_stack: int) -> Plan:
    """``plan`` with its cells (copies) cut into stacks of at most ``max_stack`` models."""
    cells = [copy.copy(c) for c in plan.cells]
    return Plan(cells, _stacks(cells, max_stack), plan.excluded, plan.varying)
