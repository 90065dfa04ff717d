"""The report page: one jinja2 template, autoescaping on.

Every string that comes from a study (its name, loss labels, conditions, error messages,
the study file itself) reaches the page through ``{{ }}`` and is escaped, so a loss
registered as ``<script>...</script>`` shows as text and runs nothing. The page links
nothing outside its own folder: styles are inline, figures sit beside it.
"""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("losslab.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(context: dict[str, Any]) -> str:
    """The HTML text of the report page for ``context`` (see :mod:`losslab.report.build`)."""
    return _ENV.get_template("report.html").render(**context)
