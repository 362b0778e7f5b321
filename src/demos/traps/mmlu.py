"""The MMLU chapter's trap: a macro average (each subject counts once) where the harness's ``mmlu``
group takes a micro average (each question counts once), against lm-eval's own aggregation."""

from __future__ import annotations

from demos.traps import Measured, Trap


def measure() -> Measured:
    from lm_eval.api.metrics import aggregate_subtask_metrics

    from demos.eval.mmlu import macro_average, micro_average

    # per-question scores of three subjects of very different sizes, as MMLU's subjects differ
    per_subject = {
        "professional_law": [1.0] * 500 + [0.0] * 1034,
        "high_school_biology": [1.0] * 200 + [0.0] * 110,
        "college_physics": [1.0] * 60 + [0.0] * 42,
    }
    accs = [sum(v) / len(v) for v in per_subject.values()]
    sizes = [len(v) for v in per_subject.values()]
    reference = aggregate_subtask_metrics(accs, sizes, weight_by_size=True)
    return Measured(
        right_error=abs(micro_average(per_subject) - reference),
        wrong_error=abs(macro_average(per_subject) - reference),
        tolerance=1e-12,
        quantity="group accuracy of 3 subjects of 1,534, 310 and 102 questions vs lm-eval "
        "0.4.13 aggregate_subtask_metrics(weight_by_size=True)",
    )


TRAPS = [
    Trap(
        chapter="mmlu",
        title="Averaging subjects where the harness averages questions",
        wrong="mean(mean(scores) for scores in per_subject.values())",
        right="sum(map(sum, per_subject.values())) / sum(map(len, per_subject.values()))",
        shows="the group score whenever subjects differ in size and in accuracy",
        measure=measure,
    )
]
