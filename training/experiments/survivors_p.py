"""Number of surviving circles against the modulus p
(reference ``analysis/plot_num_circles.py``, data ``small_p``, ``big_p``, ``diff_p``)."""

from __future__ import annotations

from ._survivors import AbstractSurvivorsVs


class SurvivorsP(AbstractSurvivorsVs):
    name = "survivors_p"
    field = "p"
    label = "modulus p"
    paper_figure = "number of circles in relation to modulus p"
    reference = "training/train_model.py --p P; analysis/plot_num_circles.py"
    notes = (
        "The reference plots primes 13-127 (100 seeds) and every p in 16-101 (20 seeds, even "
        "ones included); this trainer takes odd p only (circles k = 1..(p-1)/2)."
    )
    defaults = {"values": [13, 23], "seeds": "0-1"}
