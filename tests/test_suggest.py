"""Suggestions for misspelt or foreign names: by meaning (synonyms), then by spelling."""

import textwrap

import pytest

from losslab.study.spec import StudyFileError, load_study
from losslab.suggest import closest

TRAIN_FIELDS = ["optimizer", "lr", "batch_size", "steps", "eval_every", "weight_decay",
                "lr_decay", "decay_rate", "patience", "epochs"]


@pytest.mark.parametrize(("typed", "meant"), [
    ("learning_rate", "lr"),          # by spelling alone this is decay_rate
    ("Learning-Rate", "lr"),
    ("iterations", "steps"),
    ("wd", "weight_decay"),
    ("batchsize", "batch_size"),
    ("stpes", "steps"),               # a typo: spelling
    ("optimiser", "optimizer"),
])
def test_closest_prefers_meaning_then_spelling(typed, meant):
    assert closest(typed, TRAIN_FIELDS) == meant


def test_spelling_alone_would_have_said_decay_rate():
    # the reason for the table: difflib ranks decay_rate first for learning_rate
    import difflib

    assert difflib.get_close_matches("learning_rate", TRAIN_FIELDS, n=1) == ["decay_rate"]


def test_a_synonym_counts_only_when_its_target_is_valid_here():
    assert closest("learning_rate", ["decay_rate", "steps"]) == "decay_rate"
    assert closest("zzz", TRAIN_FIELDS) is None


@pytest.mark.parametrize(("section", "typed", "meant"), [
    ("[train]\nlearning_rate = 0.1", "learning_rate", "'lr'"),
    ("[train]\niterations = 10", "iterations", "'steps'"),
    ("[noise]\nnoise_rate = 0.2", "noise_rate", "'label_noise_rate'"),
])
def test_study_files_suggest_by_meaning(tmp_path, section, typed, meant):
    text = textwrap.dedent("""
        name = "t"
        seeds = 2
        datasets = ["checkerboard"]
        models = [{name = "mlp", hidden = [8]}]
        losses = ["log"]
        """) + section + "\n"
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(StudyFileError) as info:
        load_study(path)
    message = str(info.value)
    assert typed in message and f"did you mean {meant}" in message, message
