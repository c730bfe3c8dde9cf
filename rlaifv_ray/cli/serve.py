"""`rlaifv-ray serve`: the best-of-N ranker on Ray Serve (its start-up and shutdown: serve/run.py)."""

from __future__ import annotations

from .common import add_config, add_parser, init_ray


def add_commands(sub) -> None:
    sv = add_parser(
        sub,
        "serve",
        help="serve the best-of-N ranker on Ray Serve (blocks; Ctrl-C stops)",
        description="Deploy the ranker (POST /v1/rank, POST /v1/generate, GET /healthz) with the config's serve: "
        "section and block. Binds 127.0.0.1 unless serve.host says otherwise; set the variable named by "
        "serve.token_env (default RLAIFV_SERVE_TOKEN) to require a bearer token.",
    )
    add_config(sv)
    sv.add_argument("--policy", help="aligned policy (default: the run's best policy by eval.select, else its last)")
    sv.add_argument("--reference", help="reference policy (default: models.policy.path)")
    sv.add_argument("--port", type=int, help="HTTP port (default serve.port, 8000)")
    sv.set_defaults(func=_serve)


def _serve(args) -> int:
    from ..serve.run import serve_until_stopped

    given = (("policy", args.policy), ("reference", args.reference), ("port", args.port))
    overrides = list(args.set) + [f"serve.{k}={v}" for k, v in given if v]
    return serve_until_stopped(args.config, overrides, init_ray)
