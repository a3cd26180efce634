"""The early-window table in ``dynafit reproduce``'s summary and report."""

import pandas as pd

from training._claims import _circle_model_lines
from training.reproduce import circle_model_summary


def test_circle_model_summary_and_report_lines():
    surv = pd.DataFrame(
        {
            "run": [0, 0, 1, 1, 0, 1],
            "window": [100.0, 200.0, 100.0, 200.0, 100.0, 100.0],
            "candidate": ["mf", "mf", "mf", "mf", "top-k at W (told k)"] * 1 + ["alive at W"],
            "f1": [1.0, 0.5, 0.5, 0.5, 0.8, 0.0],
        }
    )
    fc = pd.DataFrame(
        {
            "run": [0, 1, 0, 1],
            "candidate": ["mf", "mf", "persistence", "persistence"],
            "horizon": [50.0, 50.0, 50.0, 50.0],
            "skill": [0.2, 0.4, 0.0, 0.0],
        }
    )
    cm = circle_model_summary(surv, fc)
    assert cm["runs"] == 2 and cm["windows"] == [100.0, 200.0]
    assert cm["survivor_f1"]["mf"] == [0.75, 0.5]
    assert cm["survivor_f1"]["top-k at W (told k)"][1] is None  # no such window
    assert abs(cm["forecast_skill"]["mf"][0] - 0.3) < 1e-12
    lines = _circle_model_lines(cm)
    assert "| mf | 0.75 | 0.50 |" in lines
    assert "| top-k at W (told k) | 0.80 | - |" in lines
    assert any(line.startswith("| persistence | 0.00") for line in lines)
