"""Number of surviving circles against AdamW's weight decay
(reference ``analysis/plot_num_circles.py``, data ``large_wd``, ``weight_decay``)."""

from __future__ import annotations

from ._survivors import AbstractSurvivorsVs


class SurvivorsWd(AbstractSurvivorsVs):
    name = "survivors_wd"
    field = "wd"
    label = "weight decay"
    log_x = True
    paper_figure = "number of circles in relation to weight decay"
    reference = "training/train_model.py --wd W; analysis/plot_num_circles.py"
    notes = (
        "The reference uses linspace(0.1, 1.5, 16) and 10**linspace(-4, -2, 16) (>= 0.002), "
        "50 seeds each."
    )
    defaults = {"values": [0.1, 0.5], "seeds": "0-1"}
