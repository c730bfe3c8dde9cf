"""The names of the metrics in RUN/summary.json's rows, once: the driver writes them, the config
checks a selection against them, the report and a sweep's table print them. Pure names: no logic."""

from __future__ import annotations

# ShapesWorld's held-out captions (toyworld/heldout.py), when the input has truth
HELDOUT = ("chair_s", "chair_i", "recall", "mean_words")
# a benchmark's metrics by its kind (benchmarks/), in a row as <name>_<metric>
BENCHMARK = {
    "pope": ("f1", "accuracy", "yes_ratio"),
    "amber_disc": ("f1", "accuracy", "yes_ratio"),
    "chair": ("chair_s", "chair_i", "recall", "mean_words"),
    "amber_gen": ("chair", "cover", "hal", "cog"),
    "mcq": ("accuracy", "no_option"),
}
BENCHMARK_KINDS = tuple(BENCHMARK)
# which way is better, for picking a checkpoint by a metric
BENCHMARK_DIRECTION = {
    "f1": "max",
    "accuracy": "max",
    "chair_s": "min",
    "chair_i": "min",
    "recall": "max",
    "chair": "min",
    "cover": "max",
    "hal": "min",
    "cog": "min",
    "no_option": "min",
}
# the iteration's feedback (its pairs and, on ShapesWorld, their audit) and its DPO
FEEDBACK = ("pairs", "pair_accuracy", "false_claim_rejection")
TRAINING = ("dpo_steps", "dpo_loss_last")


def benchmark_metrics(benchmarks) -> list[str]:
    """<name>_<metric> of each of BENCHMARKS (eval.benchmarks: each with a `label` and a `kind`)."""
    return [f"{b.label}_{m}" for b in benchmarks for m in BENCHMARK[b.kind]]
