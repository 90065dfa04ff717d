"""The study file: a TOML grid of datasets x models x activations x losses x settings x seeds.

A study file is read with :mod:`tomllib` and validated completely (structure with pydantic,
names against the registries, values by building the objects they describe) before
anything runs. Every problem is ONE :class:`~losslab.errors.LosslabError` line naming the
file, the field and the fix, e.g.::

    demo.toml: losses[1]: unknown loss 'hnge'. Did you mean 'hinge'? Valid loss names: ...

Schema (every list on a scalar setting is a grid axis; the grid is the product of the axes)::

    name = "demo"                       # required; [a-z0-9_-]+
    description = "which losses fit the deep toy nets"
    imports = []                        # user modules that register losses/models/...
    seeds = 3                           # n -> seeds 0..n-1, or a list [0, 1, 2]
    datasets = ["checkerboard", {name = "digits", dev_fraction = 0.1, standardize = true}]
    models   = [{name = "mlp", hidden = [200, 200]}, {name = "mlp", hidden = []}]
    losses   = ["log", "hinge", {name = "alpha", alpha = 4}]
    activations = ["relu"]              # default ["relu"]; the model's activation=
    engine = "torch"                    # or "npnet" (losslab.npnet); per model: {..., engine=}
    [train]                             # TrainConfig fields; steps or epochs
    lr = [3e-5, 1e-4]
    [noise]                             # label_noise_rate, label_noise_kind, input_noise_eps
    label_noise_rate = [0.0, 0.2]
    [measure]                           # extra measurements: name = true | {options}
    [tune]                              # per-loss lr / weight decay chosen on dev
    lr = [1e-4, 3e-4, 1e-3]             #   (losslab.study.tuning)
    seeds = [100, 101]
    [[exclude]]                         # drop the cells matching every key given
    dataset = "spirals"
    loss = "hinge"
    [scales.quick]                      # deep-merged over the file by --scale quick
    train = {steps = 300}

Seed: Janocha & Czarnecki 2017 §3 (the grids of losses x nets x datasets x noise they
report); lecture notes 2018 §5-7 (the training settings).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from losslab.checks import check_seed_list
from losslab.errors import LosslabError
from losslab.plugins import import_modules, load_plugins
from losslab.suggest import closest

# TrainConfig fields a study may not set: the seed is the `seeds` axis, the device a
# command-line choice, checkpoints belong to the runner.
_TRAIN_RESERVED = {
    "seed": "seeds are the top-level `seeds` axis (seeds = 3 or seeds = [0, 1, 2])",
    "device": "the device is chosen on the command line: losslab run --device auto|cpu|cuda",
    "checkpoint_path": "losslab run checkpoints each stack itself (--checkpoint-every); remove it",
    "checkpoint_every": "losslab run checkpoints each stack itself (--checkpoint-every); "
    "remove it",
    "checkpoint_seconds": "losslab run checkpoints each stack itself (--checkpoint-every); "
    "remove it",
    "resume": "losslab run resumes by itself; remove it",
}
NOISE_FIELDS = ("label_noise_rate", "label_noise_kind", "input_noise_eps", "noise_test")


ENGINES = ("torch", "npnet")


def check_engine(value: Any) -> str:
    """``value`` if it names an engine: "torch" (losslab.train) or "npnet" (losslab.npnet)."""
    if value not in ENGINES:
        raise ValueError(f"engine must be \"torch\" (losslab.train) or \"npnet\" (the "
                         f"NumPy engine, losslab.npnet), got {value!r}")
    return value


def model_engine(spec: Any, item: Item) -> str:
    """The engine that trains the cells of model entry ``item``: its own ``engine``
    option, else the study's."""
    return item.options.get("engine", spec.engine)


class StudyFileError(LosslabError):
    """A bad study file: the message names the file, the field and the fix."""


class Item(BaseModel):
    """One entry of a dataset/model/loss/activation axis: a registry name and its options."""

    model_config = ConfigDict(frozen=True)
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> Item:
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            if "name" not in value:
                raise ValueError(
                    "a table needs a `name` key, e.g. {name = \"mlp\", hidden = [100]}"
                )
            options = {k: v for k, v in value.items() if k != "name"}
            return cls(name=value["name"], options=options)
        raise ValueError(f"expected a name or a table with `name`, got {value!r}")


def _items(value: Any) -> list[Item]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError("must name at least one entry")
    return [Item.parse(v) for v in values]


class NoiseSpec(BaseModel):
    """Noise of the training labels and inputs (Janocha & Czarnecki 2017 §3)."""

    model_config = ConfigDict(extra="forbid")
    label_noise_rate: float | list[float] = 0.0
    label_noise_kind: str | list[str] = "symmetric"
    input_noise_eps: float | list[float] = 0.0
    noise_test: bool = False


#: The settings ``[tune]`` can choose per loss (per-model settings of one stack).
TUNABLE = ("lr", "weight_decay")
#: Tuning metric -> whether higher is better.
TUNE_METRICS = {"dev_accuracy": True, "dev_loss": False}


class Range(BaseModel):
    """A continuous search range of the Optuna method: ``{low, high, log}``."""

    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a range needs finite low < high, got {self.low} .. {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class TuneSpec(BaseModel):
    """The ``[tune]`` table of a study file (see :mod:`losslab.study.tuning`)."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["grid", "optuna"] = "grid"
    lr: list[float] | Range | None = None
    weight_decay: list[float] | Range | None = None
    seeds: list[int]
    metric: Literal["dev_accuracy", "dev_loss"] = "dev_accuracy"
    trials: int = Field(20, ge=1)
    sampler_seed: int = Field(0, ge=0)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        return check_seed_list("tuning seed", value, "[100, 101]")

    @property
    def tuned(self) -> tuple[str, ...]:
        """The settings this table tunes, e.g. ``("lr",)``."""
        return tuple(p for p in TUNABLE if getattr(self, p) is not None)

    @property
    def higher_is_better(self) -> bool:
        return TUNE_METRICS[self.metric]


class StudySpec(BaseModel):
    """The validated structure of a study file (names and values are checked afterwards)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    description: str = ""
    imports: list[str] = Field(default_factory=list)
    seeds: int | list[int]
    datasets: list[Item]
    models: list[Item]
    losses: list[Item]
    activations: list[Item] = Field(default_factory=lambda: [Item(name="relu")])
    train: dict[str, Any] = Field(default_factory=dict)
    noise: NoiseSpec = Field(default_factory=NoiseSpec)
    measure: dict[str, bool | dict[str, Any]] = Field(default_factory=dict)
    tune: TuneSpec | None = None
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    scales: dict[str, dict[str, Any]] = Field(default_factory=dict)
    engine: str = "torch"

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        return check_engine(value)

    @field_validator("datasets", "models", "losses", "activations", mode="before")
    @classmethod
    def _axis(cls, value: Any) -> list[Item]:
        return _items(value)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("seeds = n needs n >= 1 (seeds 0..n-1), or give a list")
            return value
        return check_seed_list("seed", value, "[0, 1, 2]")

    @property
    def seed_list(self) -> list[int]:
        """The seeds as a list."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "list[int]", "str", "bool", "float", "list[float]", "list[str]"):
            continue
        elif part.startswith(("function-", "dict[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_message(err: ValidationError, model: type[BaseModel]) -> str:
    first = err.errors()[0]
    where = _loc(first["loc"])
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1])
        target = NoiseSpec if first["loc"][0] == "noise" else model
        close = closest(key, target.model_fields)
        hint = f"did you mean {close!r}?" if close else "remove it"
        return f"{where}: unknown field {key!r}; {hint} Valid: {', '.join(target.model_fields)}"
    if first["type"] == "missing":
        return f"{where}: required field missing; add it (see the schema in `losslab run --help`)"
    if first["type"] == "string_pattern_mismatch":
        return f"{where}: must use only a-z, 0-9, '_' and '-', got {first['input']!r}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: {msg} (got {first['input']!r})"


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables merge key by key, other values replace."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """The parsed TOML document and its text; unreadable or malformed files are errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = ("check the path" if path.suffix else
                "check the path, or name a ready-made study (`losslab list studies`)")
        raise StudyFileError(f"{path}: no such study file; {hint}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise StudyFileError(f"{path}: cannot read the study file ({err})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        raise StudyFileError(f"{path}: malformed TOML: {err}; fix the syntax there") from None


class Study:
    """A validated study: the spec at one scale, its source file and text.

    Attributes:
        spec: the :class:`StudySpec` with the scale's overrides applied.
        path: the study file; ``text``: its content as read; ``scale``: the applied scale
            (None: the file as written).
        notes: what the runner should tell the user before it starts (e.g. a dataset
            replaced by its fallback, see :func:`use_fallbacks`).
    """

    def __init__(self, spec: StudySpec, path: Path, text: str, scale: str | None):
        self.spec, self.path, self.text, self.scale = spec, path, text, scale
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return self.spec.name

    def fail(self, field: str, message: str) -> StudyFileError:
        """A one-line error naming this file and ``field``."""
        where = f"{self.path}" + (f" (scale {self.scale})" if self.scale else "")
        return StudyFileError(f"{where}: {field}: {message}")


def _validate_document(doc: dict[str, Any], path: Path, scale: str | None) -> StudySpec:
    try:
        return StudySpec.model_validate(doc)
    except ValidationError as err:
        where = f"{path}" + (f" (scale {scale})" if scale else "")
        raise StudyFileError(f"{where}: {_pydantic_message(err, StudySpec)}") from None


def import_plugins(modules: list[str], path: Path) -> None:
    """Import the user modules of ``imports`` (they register losses, models, ...)."""
    for i, module in enumerate(modules):
        try:
            import_modules([module])
        except LosslabError as err:
            raise StudyFileError(f"{path}: imports[{i}]: {err}") from None


def load_study(path: str | Path, scale: str | None = None, *,
               fallbacks: bool = True) -> Study:
    """Read, merge the scale into, and completely validate a study file.

    Every scale of the file is validated too, so a typo in ``[scales.full]`` is found by
    a quick run.

    Args:
        path: the TOML file, or a ready-made study's name (``"demo"``: the presets shipped
            in the package, :func:`losslab.catalogue.resolve_study`).
        scale: a key of the file's ``[scales]`` table, or None for the file as written.
        fallbacks: resolve dataset fallbacks (:func:`use_fallbacks`, which looks for the
            data); False keeps each entry's first choice and touches no data.

    Returns:
        The :class:`Study` at that scale, dataset fallbacks resolved (:func:`use_fallbacks`).

    Raises:
        StudyFileError: one line naming the file, the field and the fix.
    """
    from losslab.catalogue import resolve_study

    path = resolve_study(str(path))
    doc, text = read_toml(path)
    base = _validate_document(doc, path, None)
    load_plugins()
    import_plugins(base.imports, path)
    scales = doc.get("scales", {})
    if scale is not None and scale not in scales:
        valid = ", ".join(scales) or "none (add a [scales.NAME] table)"
        raise StudyFileError(
            f"{path}: --scale {scale!r} is not defined; scales in the file: {valid}"
        )
    chosen = None
    for name in [None, *scales]:
        merged = doc if name is None else deep_merge(doc, scales[name])
        spec = _validate_document(merged, path, name)
        if name is not None and "scales" in scales[name]:
            raise StudyFileError(f"{path}: scales.{name}.scales: a scale cannot define scales")
        study = Study(spec, path, text, name)
        check_study(study)
        if name == scale:
            chosen = study
    assert chosen is not None
    return use_fallbacks(chosen) if fallbacks else chosen


# ----------------------------------------------------------------- semantic checks
def _registries() -> dict[str, dict[str, Any]]:
    from losslab.activations import ACTIVATIONS
    from losslab.data import DATASETS
    from losslab.losses import LOSSES
    from losslab.models import MODELS

    return {"dataset": DATASETS, "model": MODELS, "loss": LOSSES, "activation": ACTIVATIONS}


def registry_key(kind: str, name: str) -> str:
    """The registry key of ``name`` (unknown names raise, suggesting the closest one)."""
    from losslab.registry import lookup

    registry = _registries()[kind]
    entry = lookup(registry, name, kind)
    return next(k for k, v in registry.items() if v is entry)


def _accepted(func: Any, skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], bool]:
    """(parameters with their defaults (inspect.Parameter.empty if none), takes **kwargs)."""
    params = inspect.signature(func).parameters
    named = {
        k: p.default
        for k, p in params.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and k not in skip and k != "self"
    }
    return named, any(p.kind == p.VAR_KEYWORD for p in params.values())


def _check_options(study: Study, field: str, what: str, options: dict[str, Any],
                   named: list[str], open_kw: bool, reserved: Mapping[str, str]) -> None:
    """Every key of ``options`` must be one of ``named`` (unless ``open_kw``) and not reserved."""
    for key in options:
        if key in reserved:
            raise study.fail(f"{field}.{key}", reserved[key])
        if key not in named and not open_kw:
            close = closest(key, named)
            hint = f"did you mean {close!r}?" if close else "remove it."
            raise study.fail(
                f"{field}.{key}",
                f"{what} has no option {key!r}; {hint} Options: {', '.join(named) or 'none'}",
            )


# Model arguments the runner sets: sizes from the data, seed from the cell, activation
# from the activations axis.
MODEL_DERIVED = ("in_features", "in_channels", "image_size", "length", "classes", "seed",
                 "generator", "input_shape", "num_classes")
_MODEL_RESERVED = {
    "activation": "activations are their own axis: activations = [\"relu\", ...]",
    "activation_kwargs": "give activation options in the activations axis, e.g. "
    "activations = [{name = \"leaky_relu\", alpha = 0.1}]",
    "seed": "seeds are the top-level `seeds` axis",
    "generator": "seeds are the top-level `seeds` axis",
}
_DATASET_RESERVED = {
    "seed": "the data seed is fixed at 0 so every cell sees the same data (common random "
    "numbers); vary `seeds` instead",
    "label_noise_rate": "put noise in the [noise] table",
    "label_noise_kind": "put noise in the [noise] table",
    "input_noise_eps": "put noise in the [noise] table",
    "noise_test": "put noise in the [noise] table",
}


def _as_axis(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def train_axes(train: dict[str, Any]) -> dict[str, list[Any]]:
    """Each [train] field as its list of values (a list on a scalar field is an axis)."""
    out = {}
    for key, value in train.items():
        if key == "betas":
            out[key] = value if value and isinstance(value[0], list) else [value]
        else:
            out[key] = _as_axis(value)
    return out


def check_study(study: Study) -> None:
    """Check names against the registries and values by building what they describe."""
    from losslab.activations import get_activation
    from losslab.data import load_dataset
    from losslab.losses import get_loss
    from losslab.train import TrainConfig

    spec = study.spec
    registries = _registries()
    axes = (("datasets", "dataset", spec.datasets), ("models", "model", spec.models),
            ("losses", "loss", spec.losses), ("activations", "activation", spec.activations))
    for field, kind, axis in axes:
        for i, item in enumerate(axis):
            at = f"{field}[{i}]"
            try:
                key = registry_key(kind, item.name)
            except LosslabError as err:
                raise study.fail(at, str(err)) from None
            factory = registries[kind][key]
            options = item.options
            if kind == "model":
                options = {k: v for k, v in item.options.items() if k != "engine"}
            if kind == "dataset":
                options = {k: v for k, v in item.options.items() if k != "fallback"}
                if "fallback" in item.options:
                    _check_fallback(study, at, item.options["fallback"], options)
                source, open_kw = _accepted(factory, ("root", "rng"))
                common, _ = _accepted(load_dataset, ("name", *_DATASET_RESERVED))
                named, reserved = [*common, *source], _DATASET_RESERVED
            else:
                skip = {"loss": ("validate",), "model": MODEL_DERIVED}.get(kind, ())
                params, open_kw = _accepted(factory, skip)
                named = list(params)
                reserved = _MODEL_RESERVED if kind == "model" else {}
            _check_options(study, at, f"{kind} {key!r}", options, named, open_kw, reserved)
            try:
                # Cheap objects are built, so their own checks judge the values; models and
                # datasets are built at run time, before anything is stored.
                if kind == "loss":
                    get_loss(key, **item.options)
                elif kind == "activation":
                    get_activation(key, **item.options)
            except LosslabError as err:
                raise study.fail(at, str(err)) from None
            except TypeError as err:
                raise study.fail(at, f"bad options for {kind} {key!r}: {err}") from None
    _check_train(study, TrainConfig)
    _check_noise(study)
    _check_measure(study)
    _check_exclude(study)
    check_tune(study)
    _check_engines(study)


def check_tune(study: Study) -> None:
    """Semantic checks of ``[tune]``; each problem is one ``study.fail`` line."""
    from losslab.train import TrainConfig

    spec = study.spec
    tune: TuneSpec | None = spec.tune
    if tune is None:
        return
    if not tune.tuned:
        raise study.fail("tune", "name what to tune: lr = [...] and/or weight_decay = [...]")
    if tune.method == "grid" and "trials" in tune.model_fields_set:
        raise study.fail("tune.trials", 'trials belong to method = "optuna"; remove it')
    for name in tune.tuned:
        values = getattr(tune, name)
        if isinstance(values, Range):
            if tune.method == "grid":
                raise study.fail(
                    f"tune.{name}",
                    'a {low, high} range needs method = "optuna"; the grid takes a list',
                )
            values = [values.low, values.high]
        elif not values:
            raise study.fail(f"tune.{name}", "an empty list; give the values to try")
        elif len(set(values)) != len(values):
            raise study.fail(f"tune.{name}", f"repeated values in {values}; list each once")
        for value in values:
            try:
                TrainConfig(**{name: value, "device": "cpu"})
            except LosslabError as err:
                raise study.fail(f"tune.{name}", str(err)) from None
        train_value = spec.train.get(name)
        if isinstance(train_value, list) and len(train_value) > 1:
            raise study.fail(
                f"train.{name}",
                f"{name} is tuned per loss by [tune]; give [train] one value or none",
            )
    for i, item in enumerate(spec.datasets):
        if not item.options.get("dev_fraction"):
            raise study.fail(
                f"datasets[{i}]",
                "[tune] chooses on the dev split, which this dataset lacks; give it one, e.g. "
                f'{{name = "{item.name}", dev_fraction = 0.2}}',
            )
    overlap = sorted(set(tune.seeds) & set(spec.seed_list))
    if overlap:
        raise study.fail(
            "tune.seeds",
            f"seeds {overlap} are also final seeds; tuning seeds must be disjoint from "
            "`seeds` (e.g. tune.seeds = [100, 101])",
        )
    if tune.method == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise study.fail(
                "tune.method", "method = \"optuna\" needs optuna: pip install 'losslab[tune]'"
            ) from None


def _check_engines(study: Study) -> None:
    """Every model entry names a known engine, and npnet is asked only what it supports."""
    from losslab.study.npnet_cells import message_npnet, npnet_problem

    spec = study.spec
    for i, model in enumerate(spec.models):
        try:
            engine = check_engine(model_engine(spec, model))
        except ValueError as err:
            raise study.fail(f"models[{i}].engine", str(err)) from None
        if engine != "npnet":
            continue
        options = {k: v for k, v in model.options.items() if k != "engine"}
        losses = [(registry_key("loss", loss.name), loss.options) for loss in spec.losses]
        problem = npnet_problem(registry_key("model", model.name), options, losses,
                                train_axes(spec.train), spec.measure, spec.tune is not None)
        if problem is not None:
            where, message = problem
            raise study.fail(where.replace("model", f"models[{i}]", 1)
                             if where.startswith("model") else where,
                             f"{message} (models[{i}] trains with npnet). {message_npnet()}")


def _check_fallback(study: Study, at: str, fallback: Any, options: dict[str, Any]) -> None:
    """``fallback`` must name a dataset that takes the entry's other options too."""
    from losslab.data import DATASETS, load_dataset

    if not isinstance(fallback, str):
        raise study.fail(f"{at}.fallback", f"must be a dataset name, e.g. fallback = "
                         f"\"fashion_mnist\", got {fallback!r}")
    try:
        key = registry_key("dataset", fallback)
    except LosslabError as err:
        raise study.fail(f"{at}.fallback", str(err)) from None
    source, open_kw = _accepted(DATASETS[key], ("root", "rng"))
    common, _ = _accepted(load_dataset, ("name", *_DATASET_RESERVED))
    _check_options(study, f"{at}.fallback", f"dataset {key!r}", options, [*common, *source],
                   open_kw, _DATASET_RESERVED)


def use_fallbacks(study: Study) -> Study:
    """The study with each dataset entry that names a ``fallback`` resolved to the data used.

    ``{name = "mnist", fallback = "fashion_mnist"}`` stays MNIST when its files are found
    (or downloaded by the data layer); otherwise the entry becomes Fashion-MNIST with the
    same options, and ``study.notes`` says so. Cells, results and reports then carry the
    dataset that actually ran. Entries without ``fallback`` are left as they are.
    """
    from losslab.data import load_dataset
    from losslab.data.info import describe_dataset

    items, notes = [], []
    for i, item in enumerate(study.spec.datasets):
        options = {k: v for k, v in item.options.items() if k != "fallback"}
        fallback = item.options.get("fallback")
        name = item.name
        if fallback is not None:
            load_options = dict(options)
            root = load_options.pop("root", None)
            try:
                # Files on disk are enough to keep the entry: the run loads them later.
                if describe_dataset(item.name, root, **load_options).missing is not None:
                    load_dataset(item.name, root, **load_options)
            except LosslabError as err:
                reason = str(err).splitlines()[0]
                reason = reason if len(reason) <= 100 else reason[:97] + "..."
                notes.append(f"datasets[{i}]: {item.name} is not available ({reason}); "
                              f"running on its fallback {fallback}")
                name = fallback
        items.append(Item(name=name, options=options))
    resolved = Study(study.spec.model_copy(update={"datasets": items}), study.path, study.text,
                     study.scale)
    resolved.notes = [*study.notes, *notes]
    return resolved


def _check_train(study: Study, train_config: type) -> None:
    train = study.spec.train
    names = {f.name for f in fields(train_config)}
    for key in train:
        if key in _TRAIN_RESERVED:
            raise study.fail(f"train.{key}", _TRAIN_RESERVED[key])
        if key not in names and key != "epochs":
            close = closest(key, [*names, "epochs"])
            hint = f"did you mean {close!r}?" if close else "remove it"
            raise study.fail(f"train.{key}", f"unknown training setting {key!r}; {hint}")
    if "steps" in train and "epochs" in train:
        raise study.fail("train.epochs", "give steps or epochs, not both")
    for key, values in train_axes(train).items():
        if not values:
            raise study.fail(f"train.{key}", "an empty list; give a value or a list of values")
        if len(values) != len({repr(v) for v in values}):
            raise study.fail(f"train.{key}", f"repeated values in {values!r}; list each once")
        for j, value in enumerate(values):
            at = f"train.{key}" + (f"[{j}]" if len(values) > 1 else "")
            if key == "epochs":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value > 0
                ):
                    raise study.fail(at, f"epochs must be a number > 0, got {value!r}")
                continue
            try:
                train_config(**{key: value, "device": "cpu"})
            except LosslabError as err:
                raise study.fail(at, str(err)) from None
            except TypeError as err:
                raise study.fail(at, f"bad value {value!r}: {err}") from None


def _check_noise(study: Study) -> None:
    from losslab.checks import check_choice, check_real
    from losslab.data.noise import LABEL_NOISE_KINDS

    noise = study.spec.noise
    checks = {
        "label_noise_rate": lambda v: check_real("label_noise_rate", v, 0.0, 1.0, high_open=True),
        "label_noise_kind": lambda v: check_choice("label_noise_kind", v, LABEL_NOISE_KINDS),
        "input_noise_eps": lambda v: check_real("input_noise_eps", v, 0.0),
    }
    for key, check in checks.items():
        values = _as_axis(getattr(noise, key))
        if not values:
            raise study.fail(f"noise.{key}", "an empty list; give a value or a list of values")
        for j, value in enumerate(values):
            try:
                check(value)
            except LosslabError as err:
                at = f"noise.{key}" + (f"[{j}]" if len(values) > 1 else "")
                raise study.fail(at, str(err)) from None


def measurement_registry() -> Mapping[str, Any] | None:
    """``losslab.metrics.measurements.MEASUREMENTS`` where that module exists, else None."""
    try:
        module = importlib.import_module("losslab.metrics.measurements")
    except ImportError:
        return None
    return getattr(module, "MEASUREMENTS", None)


def _check_measure(study: Study) -> None:
    if measurement_registry() is None:
        return
    from losslab.metrics.measurements import get_measurement

    for key, value in study.spec.measure.items():
        if value is False:
            continue
        try:
            get_measurement(key, **(value if isinstance(value, dict) else {}))
        except LosslabError as err:
            raise study.fail(f"measure.{key}", str(err)) from None
        except TypeError as err:
            raise study.fail(f"measure.{key}", f"bad options: {err}") from None


# Axis columns an [[exclude]] rule may name.
EXCLUDE_KEYS = ("dataset", "model", "activation", "loss", "optimizer", "lr", "weight_decay",
                "label_noise_rate", "label_noise_kind", "input_noise_eps", "steps", "epochs",
                "batch_size", "seed")


def _check_exclude(study: Study) -> None:
    for i, rule in enumerate(study.spec.exclude):
        if not rule:
            raise study.fail(f"exclude[{i}]", "an empty rule would drop every cell; give keys")
        for key in rule:
            if key not in EXCLUDE_KEYS:
                close = closest(key, EXCLUDE_KEYS)
                hint = f"did you mean {close!r}?" if close else "remove it"
                raise study.fail(
                    f"exclude[{i}].{key}",
                    f"cannot match on {key!r}; {hint} Keys: {', '.join(EXCLUDE_KEYS)}",
                )
