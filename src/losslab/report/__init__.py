"""The report of a study: figures, tables and one self-contained HTML page.

::

    from losslab.report import build_report
    index = build_report(results, "study-dir/report")   # results: a StudyResults

:mod:`~losslab.report.figures` holds one function per figure, each a function of the
study's tidy DataFrames; :mod:`~losslab.report.tables` the tables (numbers from
:mod:`losslab.metrics.stats`); :mod:`~losslab.report.html` the jinja2 page (autoescaped);
:mod:`~losslab.report.build` puts them together and caches figures by content hash.
"""

from losslab.report.build import build_report
from losslab.report.figures import loss_shape_data, loss_shapes

__all__ = ["build_report", "loss_shape_data", "loss_shapes"]
