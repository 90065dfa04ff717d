"""Which valid name a misspelt or foreign one meant: by meaning first, then by spelling.

``difflib`` alone answers by spelling, so ``learning_rate`` (what Keras and Hugging Face
call it) would be answered with ``decay_rate``. :data:`SYNONYMS` maps the names other
libraries use to losslab's; :func:`closest` consults it before ``difflib``::

    closest("learning_rate", ["lr", "decay_rate", "steps"])   # 'lr'
    closest("stpes", ["lr", "decay_rate", "steps"])           # 'steps'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Other names for the settings of study files and TrainConfig, in the spelling of other
# libraries (PyTorch, Keras, scikit-learn, Hugging Face, Lightning). A synonym only counts
# when its target is one of the valid names at hand, so one table serves every field.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate", "learningrate", "lr_rate", "alpha_lr", "base_lr", "step_size"),
    "weight_decay": ("wd", "l2", "l2_reg", "l2_penalty", "weight_penalty", "lambda",
                     "lambd", "regularization", "regularisation"),
    "batch_size": ("batch", "batchsize", "bs", "mini_batch_size", "minibatch_size",
                   "train_batch_size"),
    "steps": ("iterations", "iters", "n_iter", "max_iter", "n_steps", "num_steps",
              "max_steps", "updates", "training_steps", "total_steps"),
    "epochs": ("n_epochs", "num_epochs", "max_epochs", "epoch"),
    "optimizer": ("optim", "opt", "solver", "optimiser"),
    "eval_every": ("eval_interval", "eval_freq", "eval_frequency", "val_every",
                   "evaluate_every", "log_every", "eval_steps", "val_check_interval"),
    "patience": ("early_stopping", "early_stop", "early_stopping_patience"),
    "lr_decay": ("lr_schedule", "scheduler", "schedule", "lr_scheduler"),
    "decay_rate": ("gamma", "lr_decay_rate", "decay_factor"),
    "seed": ("random_seed", "random_state", "rng_seed"),
    "seeds": ("seed", "random_seed", "random_seeds", "random_state", "n_seeds", "repeats"),
    "datasets": ("dataset", "data"),
    "models": ("model", "architecture", "architectures", "net", "nets"),
    "losses": ("loss", "loss_fn", "loss_functions", "criterion", "criterions"),
    "activations": ("activation", "act", "nonlinearity", "nonlinearities"),
    "label_noise_rate": ("noise_rate", "label_noise", "flip_rate", "noise"),
    "label_noise_kind": ("noise_type", "noise_kind", "label_noise_type"),
    "input_noise_eps": ("input_noise", "noise_eps", "noise_variance", "eps"),
    "hidden": ("hidden_sizes", "hidden_size", "hidden_layers", "hidden_dims", "widths",
               "layers", "width"),
    "dropout": ("dropout_rate", "drop_rate", "drop_prob", "p_dropout"),
    "momentum": ("nesterov_momentum",),
    "device": ("gpu", "accelerator", "cuda"),
    "dev_fraction": ("val_fraction", "validation_split", "valid_fraction", "dev_split",
                     "val_split"),
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name ``name`` most likely meant, or None when none is close.

    Args:
        name: the unknown name as the user wrote it (any case, ``-`` read as ``_``).
        valid: the names accepted at this place.

    Returns:
        The valid name of which ``name`` is a synonym (:data:`SYNONYMS`), else the closest
        by spelling (``difflib.get_close_matches``, cutoff 0.6), else None.
    """
    choices = list(valid)
    key = _normalise(name)
    by_key = {_normalise(c): c for c in choices}
    if key in by_key:
        return by_key[key]
    for target, others in SYNONYMS.items():
        if target in by_key and key in others:
            return by_key[target]
    close = difflib.get_close_matches(key, list(by_key), n=1)
    return by_key[close[0]] if close else None
