"""The README is a front page: at most 250 lines, opening with exactly the two set-up
commands (each creates its own venv), every link into the repository pointing at a file
that exists (the guide lives in docs/), and the generated blocks it keeps intact."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move sections to docs/"


def test_readme_starts_with_the_two_set_up_commands():
    text = README.read_text(encoding="utf-8")
    # The title, then the first block: nothing else may come before the commands.
    title, rest = text.split("\n", 1)
    assert title.startswith("# ")
    match = re.match(r"\s*```bash\n(.*?)```", rest, flags=re.DOTALL)
    assert match, "the README's first block after the title must be the set-up commands"
    commands = [line.split("#", 1)[0].strip() for line in match.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_links_point_at_files():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not t.startswith(("http://", "https://", "#"))]
    assert any(t.startswith("docs/") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == [], missing


def test_readme_keeps_the_generated_blocks():
    text = README.read_text(encoding="utf-8")
    # The studies table is written between these markers by `losslab reproduce`.
    assert text.count("<!-- studies-table -->") == 1
    assert text.count("<!-- /studies-table -->") == 1
    assert text.index("<!-- studies-table -->") < text.index("<!-- /studies-table -->")
