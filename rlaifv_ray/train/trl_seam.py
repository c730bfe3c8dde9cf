"""Every use of TRL's (and transformers Trainer's) internals, in one place, for the TRL versions in
SUPPORTED: importing this module with another TRL fails with a message saying what to install.

TRL 1.16 has no public way to train a vision model on reference log-probs stored with the pairs
(`precompute_ref_log_probs` refuses vision data), so this module holds what fills the gap:
- `no_reference_model()`: while the trainer is built, TRL's loader of a second copy of the policy as
  the reference (`trl.trainer.dpo_trainer.create_model_from_path`) returns nothing;
- `use_stored_reference(trainer)`: the flag TRL's loss reads to take `ref_chosen_logps` and
  `ref_rejected_logps` from the batch (`precompute_ref_logps`);
- `ResumeHook`: Trainer's resume hook (`_load_from_checkpoint`) routed to the trainer's
  `load_checkpoint(path, model)`;
- `step_metrics(trainer, mode)`: TRL's per-step metrics (`_metrics`), which its loss fills (rewards/*,
  logps/*) and our own loops and probe read; `log_metric` adds one beside them.
Everything else uses public API: DPOConfig, DPOTrainer, its vision collator, `compute_loss` and
`create_optimizer_and_scheduler`.
"""

from __future__ import annotations

import contextlib

from ..errors import RlaifvError

SUPPORTED = ((1, 16), (1, 17))  # [from, below): the versions whose internals this module was checked on


class TrlVersionError(RlaifvError):
    pass


def check_trl_version(version: str) -> None:
    """Fail, saying what to install, unless VERSION is in SUPPORTED."""
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        major = minor = -1
    if not (lo_major, lo_minor) <= (major, minor) < (hi_major, hi_minor):
        raise TrlVersionError(
            f"TRL {version} is installed; rlaifv-ray's DPO was checked against TRL >={lo_major}.{lo_minor},"
            f"<{hi_major}.{hi_minor} (it relies on internals listed in rlaifv_ray/train/trl_seam.py): "
            f"pip install 'trl>={lo_major}.{lo_minor},<{hi_major}.{hi_minor}'"
        )


def _installed() -> str:
    import trl

    return trl.__version__


check_trl_version(_installed())


@contextlib.contextmanager
def no_reference_model():
    """Build a DPOTrainer without the reference model TRL would load: the pairs carry its log-probs.
    Every later use of the reference in TRL is guarded by `ref_model is not None`."""
    import trl.trainer.dpo_trainer as trl_dpo

    load = trl_dpo.create_model_from_path
    trl_dpo.create_model_from_path = lambda *a, **k: None
    try:
        yield
    finally:
        trl_dpo.create_model_from_path = load


def use_stored_reference(trainer) -> None:
    """TRL's loss then reads the reference log-probs from each batch."""
    trainer.ref_model = None
    trainer.precompute_ref_logps = True


def step_metrics(trainer, mode: str) -> dict[str, list[float]]:
    """TRL's metrics of MODE (train | eval) since they were last cleared: name -> a value per loss."""
    return trainer._metrics[mode]


def log_metric(trainer, name: str, value: float) -> None:
    """VALUE logged with TRL's own metrics of the step (averaged over the logging interval)."""
    step_metrics(trainer, "train" if trainer.model.training else "eval")[name].append(value)


class ResumeHook:
    """Mixed into a Trainer: its resume reads checkpoints through `load_checkpoint(path, model)`."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        return self.load_checkpoint(resume_from_checkpoint, model if model is not None else self.model)
