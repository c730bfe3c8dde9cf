"""Peak memory of the hf engine's yes_no and sequence_logprobs against the full-logits computation
they replaced, on the same model and batch. Prints JSON.

The model is a tiny zoo model whose vocabulary is padded to a real size (default: LLaVA-NeXT with
64000 rows, as LLaVA-NeXT-34B has), because the vocabulary projection is what grows with real
models. Each (method, implementation) runs in a fresh process; its cost is the growth of peak RSS
over a warm-up call. The results of both implementations are compared too.

    python jobs/perf_engine_memory.py [--family llava_next] [--vocab 64000] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def _requests(method: str, batch: int):
    from rlaifv_ray.engines import LogprobRequest, YesNoRequest
    from rlaifv_ray.engines.base import user_message
    from rlaifv_ray.toyworld.world import scene_and_image

    images = [scene_and_image(7, i)[1].resize((112, 112)) for i in range(max(1, batch // 8))]
    if method == "yes_no":
        return [
            YesNoRequest(
                f"Is there a red circle number {i} in the image? Please answer yes or no.", images[i % len(images)]
            )
            for i in range(batch)
        ]
    msgs = user_message("Describe the image.", True)
    answer = "There is a red circle and a blue square. The circle is left of the square. " * 3
    return [LogprobRequest(msgs, answer[: 60 + 5 * i], images[i % len(images)]) for i in range(batch)]


def _full_logits_yes_no(engine, requests):
    """Before: the model's full logits (every position, with a KV cache) and a softmax of the last."""
    import torch

    from rlaifv_ray.engines.base import user_message

    texts = [engine.chat.prompt(user_message(r.question, True)) for r in requests]
    batch = engine._encode(texts, [r.image for r in requests], "right")
    last = batch["attention_mask"].sum(1) - 1
    with torch.no_grad():
        logits = engine.model(**batch).logits
        probs = torch.softmax(logits[torch.arange(len(requests)), last].float(), -1)
    return [(float(p[engine.yes_ids].sum()), float(p[engine.no_ids].sum())) for p in probs]


def _full_logits_logprobs(engine, requests):
    """Before: full logits of prompt + completion, then a full fp32 log-softmax copy."""
    import torch

    out = []
    prompts = [engine.chat.prompt(r.messages) for r in requests]
    enc_p = engine._encode(prompts, [r.image for r in requests], "right")
    enc_c = engine._encode(
        [engine.completion_text(r.messages, r.answer) for r in requests], [None] * len(requests), "right"
    )
    extra = {k: v for k, v in enc_p.items() if k not in ("input_ids", "attention_mask")}
    rows, spans = [], []
    for i in range(len(requests)):
        p_ids = enc_p["input_ids"][i][enc_p["attention_mask"][i].bool()]
        c_ids = enc_c["input_ids"][i][enc_c["attention_mask"][i].bool()]
        rows.append(torch.cat([p_ids, c_ids]))
        spans.append((len(p_ids), len(p_ids) + len(c_ids)))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), engine.tokenizer.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    with torch.no_grad():
        logits = engine.model(input_ids=ids, attention_mask=mask, **extra).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
    for row, (start, end) in enumerate(spans):
        out.append(float(logp[row, start - 1 : end - 1].gather(-1, ids[row, start:end, None]).sum()))
    return out


def child(folder: str, method: str, impl: str, batch: int) -> dict:
    import torch

    from rlaifv_ray.engines import load_engine

    torch.set_num_threads(2)
    engine = load_engine(folder, batch_size=batch, share_image_prefix=False)
    requests = _requests(method, batch)
    if impl == "ours":
        run = engine.yes_no if method == "yes_no" else (lambda rs: [s.total for s in engine.sequence_logprobs(rs)])
    else:
        run = (
            (lambda rs: _full_logits_yes_no(engine, rs))
            if method == "yes_no"
            else (lambda rs: _full_logits_logprobs(engine, rs))
        )
    run(requests[:1])  # warm-up: lazy allocations and thread pools
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    values = run(requests)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flat = [x for v in values for x in (v if isinstance(v, tuple) else (v,))]
    return {"peak_growth_mb": round((peak - before) / 1024, 1), "seconds": round(seconds, 3), "values": flat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="llava_next")
    ap.add_argument("--vocab", type=int, default=64000, help="model vocabulary rows (default: LLaVA-NeXT-34B's)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "METHOD", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.batch)))
        return
    from tests import zoo

    result = {"family": args.family, "vocab": args.vocab, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(zoo.build(args.family, f"{tmp}/{args.family}", vocab_size=args.vocab))
        for method in ("yes_no", "sequence_logprobs"):
            runs = {}
            for impl in ("full_logits", "ours"):
                print(f"{method} / {impl} ...", file=sys.stderr)
                out = subprocess.run(
                    [sys.executable, __file__, "--batch", str(args.batch), "--child", folder, method, impl],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            gap = max(abs(a - b) for a, b in zip(runs["ours"].pop("values"), runs["full_logits"].pop("values")))
            result[method] = {
                **runs,
                "max_abs_gap": gap,
                "peak_ratio_ours_over_full": round(
                    runs["ours"]["peak_growth_mb"] / max(runs["full_logits"]["peak_growth_mb"], 0.1), 3
                ),
            }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
