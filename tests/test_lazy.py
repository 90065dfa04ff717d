"""Package members imported on first use: imported only when named, kept, and an unknown
name is the usual AttributeError."""

import sys

import pytest

from losslab.lazy import members_on_first_use


def test_a_member_is_imported_when_first_named_and_kept(tmp_path, monkeypatch):
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from losslab.lazy import members_on_first_use\n"
        "__getattr__ = members_on_first_use(__name__, {'answer': 'heavy'})\n"
    )
    (package / "heavy.py").write_text("answer = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("lazypkg", "lazypkg.heavy"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import lazypkg

    assert "lazypkg.heavy" not in sys.modules
    assert lazypkg.answer == 42
    assert "lazypkg.heavy" in sys.modules and vars(lazypkg)["answer"] == 42
    with pytest.raises(AttributeError, match="'lazypkg' has no attribute 'question'"):
        lazypkg.question  # noqa: B018


def test_the_getattr_names_its_package():
    get = members_on_first_use("losslab", {})
    with pytest.raises(AttributeError, match="'losslab' has no attribute 'nothing'"):
        get("nothing")
