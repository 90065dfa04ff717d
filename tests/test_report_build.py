"""build_report on a real tiny study: the page, its figures, the cache, partial studies,
escaping of every study-provided string, and no reference outside the report folder."""

from __future__ import annotations

import functools
import html
import re
import shutil
from html.parser import HTMLParser

import pytest

from losslab.errors import LosslabError
from losslab.losses import LOSSES, LogLoss
from losslab.report import build_report

pytestmark = pytest.mark.slow


@functools.lru_cache(maxsize=1)
def _study():
    from report_results import tiny_results

    return tiny_results()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.refs.append((tag, key, value))


def _links(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_report(_study(), tmp_path_factory.mktemp("built") / "report")


def test_report_has_every_figure_file_and_no_outside_reference(built):
    index = built
    page = index.read_text(encoding="utf-8")
    links = _links(page)
    images = [v for tag, key, v in links.refs if tag == "img"]
    assert len(images) == len(list((index.parent / "figures").glob("*.png")))
    for _, _, ref in links.refs:
        assert not re.match(r"^[a-z]+:|^//", ref), ref  # no scheme, no host: relative only
        if not ref.startswith("#"):
            assert (index.parent / ref).is_file(), ref
    assert {"link", "script", "iframe"}.isdisjoint(links.tags)
    for section in ("Loss shapes", "Learning curves", "Decision boundaries", "Heat maps",
                    "Final metrics", "Paired tests", "Bias and variance", "Study file"):
        assert f">{section}</h2>" in page
    # the tiny study records no gradient norms: the page says so instead of a figure
    assert "Not shown: gradient norms: not recorded ([measure] grad_norms = true)" in page
    assert 'name = &#34;tiny&#34;' in page  # the study file, escaped


def test_rebuild_reuses_figures_and_redraws_only_what_changed(built, tmp_path):
    from report_results import with_status

    folder = tmp_path / "report"
    shutil.copytree(built.parent, folder)
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "figures").iterdir()}
    page = build_report(_study(), folder).read_text(encoding="utf-8")
    after = {p.name: p.stat().st_mtime_ns for p in (folder / "figures").iterdir()}
    assert before == after
    assert f"0 of {len(before) // 2} figures drawn" in page
    # a cell of the noise-free group fails: that group's figures change names, the stale
    # files go; the other group's figures and the loss shapes are reused
    changed = with_status(_study(), {0: {"status": "failed", "error": "out of memory"}})
    build_report(changed, folder)
    now = {p.name for p in (folder / "figures").iterdir()}
    assert len(now) == len(before)
    assert any(n.startswith("curves-learning-curves-label-noise-rate-0-0-") for n in
               set(before) - now)
    kept = now & set(before)
    assert any(n.startswith("shapes-") for n in kept)
    assert any(n.startswith("curves-learning-curves-label-noise-rate-0-2-") for n in kept)


def test_partial_study_says_what_is_missing_and_names_cannot_inject_markup(
        tmp_path, monkeypatch):
    from report_results import tiny_results, with_status

    evil = "<script>alert(1)</script>"

    class Evil(LogLoss):
        pass

    monkeypatch.setitem(LOSSES, evil, Evil)
    results = tiny_results(losses=((evil, {}), ("hinge", {})))
    assert evil in set(results.cells()["loss"])
    partial = with_status(results, {
        0: {"status": "pending"},
        1: {"status": "failed", "error": "CUDA error: <b>out of memory</b>"},
        2: {"status": "diverged", "diverged_at": 20},
        3: {"status": "running"},
    })
    cells = partial.cells()
    page = build_report(partial, tmp_path).read_text(encoding="utf-8")
    assert "What is missing" in page
    assert f"1 of {len(cells)} cells pending: not run yet" in page
    assert f"1 of {len(cells)} cells running" in page
    assert "diverged at step 20" in page and html.escape(cells.loc[2, "condition"]) in page
    assert "CUDA error: &lt;b&gt;out of memory&lt;/b&gt;" in page
    assert "<b>out of memory" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page


def test_a_study_with_nothing_finished_still_reports(tmp_path):
    from report_results import with_status

    none = with_status(_study(), {i: {"status": "pending"} for i in range(12)})
    page = build_report(none, tmp_path).read_text(encoding="utf-8")
    assert "12 of 12 cells pending" in page
    assert "learning curves: no cell has finished yet" in page


def test_report_folder_that_is_a_file_is_a_user_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(LosslabError, match="not a folder"):
        build_report(_study(), target)
