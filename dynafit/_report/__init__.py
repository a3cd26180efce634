"""The report folder of ``dynafit fit`` (``_write``: report.md, tables, equations,
manifest) and its figures (``_plot``)."""

from . import _plot as _plot
from ._write import _fmt as _fmt
from ._write import check_out_dir as check_out_dir
from ._write import markdown_table as markdown_table
from ._write import write_report as write_report
