"""The reference run's scripts (evaluation/reference): the checkpoint choice and the run's overrides."""

import pytest

pytestmark = pytest.mark.usefixtures("reference_scripts_on_path")


@pytest.fixture
def reference_scripts_on_path(monkeypatch, request):
    monkeypatch.syspath_prepend(str(request.config.rootpath / "evaluation" / "reference"))


def row(sts: float, both: float) -> dict:
    return {"stsb_dev": sts, "cloze_both_ppl": both}


def test_selection_takes_the_best_infiller_among_the_steps_near_the_best_embedder():
    from selection import choose

    rows = {"40": row(70.0, 30.0), "80": row(80.0, 25.0), "160": row(79.5, 22.0), "320": row(78.0, 20.0)}
    assert choose(rows, sts_margin=1.0) == "160"  # 320 infills best but gives up 2 STS points
    assert choose(rows, sts_margin=3.0) == "320"
    assert choose(rows, sts_margin=0.0) == "80"


def test_run_refuses_a_learning_rate_that_is_not_positive(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--learning-rate", "0"])
    assert "--learning-rate must be positive, got 0.0" in capsys.readouterr().err


def test_run_refuses_a_time_budget_that_is_not_positive(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--time-budget", "-1"])
    assert "--time-budget must be a positive number of minutes, got -1.0" in capsys.readouterr().err
