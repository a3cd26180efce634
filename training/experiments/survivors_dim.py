"""Number of surviving circles against the embedding dimension
(reference ``analysis/plot_num_circles.py``, data ``diff_dim_new``)."""

from __future__ import annotations

from ._survivors import AbstractSurvivorsVs


class SurvivorsDim(AbstractSurvivorsVs):
    name = "survivors_dim"
    field = "dim"
    label = "embedding dimension"
    paper_figure = "number of circles in relation to dimension"
    reference = "training/train_model.py --dim D; analysis/plot_num_circles.py"
    notes = "Embedding, MLP and split all vary with the seed (the reference's default mode)."
    defaults = {"values": [16, 32], "seeds": "0-1"}
