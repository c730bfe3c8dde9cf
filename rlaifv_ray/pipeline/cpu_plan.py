"""CPUs per GPU: how many CPUs each GPU pool of the feedback stream needs for the pipeline's own work
to keep its GPUs busy, and a warning where `resources` gives fewer (docs/scale.md).

needed CPUs per GPU = CPU seconds per answer / GPU seconds per answer.
- CPU per answer: the pipeline's own (fetching and decoding images, the stage's Python, writing
  parquet), measured by `jobs/perf_scale.py` with the sim engine's latencies at zero. A real
  engine's own CPU (its processor resizing images, tokenizing) comes on top; only a profile of
  that engine shows it.
- GPU per answer: what `perf_scale` measured through the sim engine's latency model for a 7B policy,
  an 8B claim LLM and a 34B labeler on H100-class GPUs, scaled to the stage's model: decode-bound
  stages (sampling, claims) as the decode curve (params ^ 1.52), the prefill-bound labeler as
  params (engines/sim.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..engines.sim import DECODE_EXPONENT

# jobs/perf_scale.py --gpus 8,16,32,64 --prompts 1920 --n 10 (README, "At cluster scale")
CPU_MS_PER_ANSWER = {"sample": 0.26, "claims": 0.27, "label": 0.40}
# stage: (billions of parameters, GPU seconds per answer, what bounds it)
MEASURED_GPU = {"sample": (7.0, 0.012, "decode"), "claims": (8.0, 0.057, "decode"), "label": (34.0, 0.064, "prefill")}


@dataclass
class CpuRow:
    stage: str
    model: str
    params_b: float
    gpu_s_per_answer: float
    cpu_ms_per_answer: float
    cpus_per_gpu_needed: float
    cpus_per_gpu: float  # resources.<stage>.num_cpus / num_gpus
    ok: bool


def gpu_seconds_per_answer(stage: str, params_b: float) -> float:
    size, seconds, bound = MEASURED_GPU[stage]
    return seconds * (params_b / size) ** (DECODE_EXPONENT if bound == "decode" else 1.0)


def cpu_plan(config) -> list[CpuRow]:
    """A row per GPU stage of the stream (sample, claims, label) whose model's size is known: a sim
    model's by its name, a real one's from its config.json (a MoE's active parameters)."""
    rows = []
    for stage, spec in config.stage_models().items():
        res = getattr(config.resources, stage)
        if spec is None or stage not in CPU_MS_PER_ANSWER or res.num_gpus == 0:
            continue
        params_b = _params_b(spec, config.data.max_image_pixels)
        gpu_s = gpu_seconds_per_answer(stage, params_b)
        need = CPU_MS_PER_ANSWER[stage] / 1000 / gpu_s
        have = res.num_cpus / res.num_gpus
        rows.append(
            CpuRow(
                stage,
                spec.path,
                round(params_b, 2),
                float(f"{gpu_s:.4g}"),
                CPU_MS_PER_ANSWER[stage],
                float(f"{need:.3g}"),
                round(have, 3),
                have >= need,
            )
        )
    return rows


def _params_b(spec, max_image_pixels: int) -> float:
    from ..locations import SIM, sim_size

    if spec.path.startswith(SIM):
        return sim_size(spec.path)
    from ..model_shapes import shape
    from ..plan import model_config

    return shape(model_config(spec.path), max_image_pixels).active_params / 1e9


def warnings(rows: list[CpuRow]) -> list[str]:
    return [
        f"resources.{r.stage}: {r.cpus_per_gpu:g} CPUs per GPU, but the pipeline's own work needs ~"
        f"{r.cpus_per_gpu_needed:g} to keep a {r.params_b:g}B model's GPU busy; raise "
        f"resources.{r.stage}.num_cpus to at least {r.cpus_per_gpu_needed:g} x num_gpus"
        for r in rows
        if not r.ok
    ]


def cpu_table(rows: list[CpuRow]) -> str:
    if not rows:
        return ""
    head = f"{'CPUs per GPU':<16} {'params':>8} {'GPU s/answer':>13} {'CPU ms/answer':>14} {'needed':>7} {'given':>6}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{'stage ' + r.stage:<16} {r.params_b:>7g}B {r.gpu_s_per_answer:>13g} {r.cpu_ms_per_answer:>14g} "
            f"{r.cpus_per_gpu_needed:>7g} {r.cpus_per_gpu:>6g}"
        )
    return "\n".join(lines + [f"warning: {w}" for w in warnings(rows)])


def cpu_json(rows: list[CpuRow]) -> list[dict]:
    return [asdict(r) for r in rows]
