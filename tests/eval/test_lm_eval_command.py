"""The evaluation chapters' real runs: the command printed with the switch off is one the installed
lm-evaluation-harness parses into the model, task, shots and batch size we meant (demos.eval.lm_eval_command)."""

import pytest

from demos.eval.fewshot import LEADERBOARD_SHOTS
from demos.eval.lm_eval_command import NOT_RUN, lm_eval, lm_eval_commands


def harness_parse(command: list[str]):
    from lm_eval._cli import HarnessCLI

    return HarnessCLI()._parser.parse_args(command)


@pytest.mark.parametrize("batch_size", ["auto", "8"])
def test_the_harness_parses_each_command_as_meant(batch_size):
    commands = lm_eval_commands("meta-llama/Llama-2-7b-hf", LEADERBOARD_SHOTS, batch_size)
    assert len(commands) == len(LEADERBOARD_SHOTS)
    for command, (task, shots) in zip(commands, LEADERBOARD_SHOTS.items(), strict=True):
        args = harness_parse(command)
        assert args.model == "hf"
        assert args.model_args == {"pretrained": "meta-llama/Llama-2-7b-hf"}
        assert args.tasks == [task]
        assert int(args.num_fewshot) == shots
        assert str(args.batch_size) == batch_size


def test_switch_off_prints_and_runs_nothing(capsys, monkeypatch):
    import subprocess

    def fail(*args, **kwargs):
        raise AssertionError("the switch is off: nothing may run")

    monkeypatch.setattr(subprocess, "run", fail)
    lm_eval("mistralai/Mistral-7B-v0.1", {"gsm8k": 5}, run=False, batch_size="8")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("lm-eval run --model hf") and "--tasks gsm8k" in out[0]
    assert out[-1] == NOT_RUN


@pytest.mark.parametrize(
    "model, shots, batch_size, run",
    [
        ("", {"arc_challenge": 25}, "auto", False),
        ("m", {}, "auto", False),
        ("m", {"arc_challenge": -1}, "auto", False),
        ("m", {"arc_challenge": 2.5}, "auto", False),
        ("m", {"arc_challenge": True}, "auto", False),
        ("m", {"": 5}, "auto", False),
        ("m", {"arc_challenge": 25}, "0", False),
        ("m", {"arc_challenge": 25}, 8, False),
        ("m", {"arc_challenge": 25}, "auto", "no"),
    ],
)
def test_bad_input_is_refused(model, shots, batch_size, run):
    with pytest.raises(ValueError):
        lm_eval(model, shots, run=run, batch_size=batch_size)
