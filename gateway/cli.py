"""`llmrank`: serve the gateway, and train / evaluate / query the router model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.registry import ConfigError, load_tiers
from gateway.settings import DEFAULT_CHECKPOINT, DEFAULT_CONFIG_DIR, Settings
from router_model.judge import JudgeConnection


def _offline_environment() -> None:
    """No network at run time: LiteLLM's bundled price map, no model-hub lookups."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own arena; the encoder and token-counting worker threads would
    otherwise grow RSS by fragmentation under sustained load. No-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).mallopt(-8, arenas)  # M_ARENA_MAX
        except (OSError, AttributeError):
            pass


def _serve(args: argparse.Namespace) -> int:
    _limit_malloc_arenas()
    from gateway.app import create_app
    from gateway.draining import serve
    from gateway.logs import configure_logging

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "config_dir": args.config}.items() if v}
    settings = Settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"llmrank: invalid configuration: {exc}", file=sys.stderr)
        return 2
    serve(
        app,
        settings.host,
        settings.port,
        settings.drain_s,
        settings.shutdown_grace_s,
        on_drain=app.state.draining.set,
    )
    return 0


def _judge_connection() -> JudgeConnection:
    """How the offline commands reach a checkpoint's feature judge: the gateway's LLMRANK_JUDGE_* settings."""
    return Settings().judge_connection(os.environ)


def _train(args: argparse.Namespace) -> int:
    from router_model.commands import TrainConfig, run_train

    card = run_train(
        TrainConfig(
            data=args.data,
            out=args.out,
            lambdas=tuple(args.lambdas),
            seed=args.seed,
            epochs=args.epochs,
            precision=args.precision,
            serve_precision=args.serve_precision,
            judge_model=args.judge_model,
            judge_connection=_judge_connection(),
            source_input=args.source_input,
            **{window: getattr(args, window) for window in ("max_tokens", "serve_max_tokens") if hasattr(args, window)},
        )
    )
    print(f"wrote {args.out} (version {card['version']}); tiers from validation: {card['tiers_from_validation']}")
    if "judge" in card:
        judge = card["judge"]
        print(
            f"features judged by {judge['model']}; parsed for {judge['prompts_without_judgement']} prompts it failed on"
        )
    return 0


def _tier_lambdas(config_dir: Path) -> dict[str, float]:
    return dict(load_tiers(config_dir / "tiers.yaml").tiers)


def _eval(args: argparse.Namespace) -> int:
    from router_model.commands import run_eval

    run_eval(
        args.data,
        args.checkpoint,
        _tier_lambdas(args.config),
        args.source,
        args.json,
        args.plot,
        judge_connection=_judge_connection(),
    )
    return 0


def _route(args: argparse.Namespace) -> int:
    from router_model.commands import run_route

    tiers = load_tiers(args.config / "tiers.yaml")
    tier = (args.tier or tiers.default_tier).lower()
    if tier not in tiers.tiers:
        print(f"llmrank: unknown tier {tier!r}; valid tiers: {', '.join(tiers.tiers)}", file=sys.stderr)
        return 2
    lam = args.lam if args.lam is not None else tiers.lambda_for(tier)
    print(run_route(args.prompt, args.checkpoint, lam, tier, judge_connection=_judge_connection(), models=args.models))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from router_model.commands import run_calibrate, run_calibrate_from_feedback

    if args.from_feedback:
        from gateway.feedback import read_feedback

        settings = Settings()
        entries = read_feedback(settings.redis_url, settings.feedback_file)
        print(f"{len(entries)} feedback scores from Redis ({settings.redis_url}) and {settings.feedback_file}")
        run_calibrate_from_feedback(entries, args.checkpoint, args.min_rows, args.seed)
        return 0
    if not (args.backend and args.data):
        print("llmrank calibrate: --backend and --data are required without --from-feedback", file=sys.stderr)
        return 2
    run_calibrate(args.backend, args.data, args.checkpoint, args.seed, _judge_connection())
    return 0


def _collect(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.collect import Transports, collect, read_prompts
    from gateway.registry import Backend, Registry, load_registry, resolve_api_keys

    registry = load_registry(args.config / "models.yaml")
    backend = registry.get(args.backend)
    if backend is None:
        names = ", ".join(b.name for b in registry.enabled)
        print(
            f"llmrank collect: no enabled backend {args.backend!r} in {args.config}/models.yaml ({names})",
            file=sys.stderr,
        )
        return 2
    judge = registry.get(args.judge) or Backend(
        name="judge", litellm_model=args.judge, profile="judge", api_base=args.judge_api_base,
        api_key_env=args.judge_api_key_env,
    )  # fmt: skip
    used = Registry(backends=(backend,) if judge is backend else (backend, judge))
    keys = resolve_api_keys(used, os.environ)
    transports = Transports.with_keys(keys, Settings().upstream_timeout_s)
    prompts = read_prompts(args.prompts)
    counts = asyncio.run(collect(prompts, backend, judge, transports, args.out, args.concurrency))
    print(f"{args.out}: {counts}")
    return 0 if counts["failed"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmrank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the OpenAI-compatible gateway")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; env LLMRANK_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080; env LLMRANK_PORT)")
    serve.add_argument("--config", type=Path, help="folder with models.yaml and tiers.yaml")
    serve.set_defaults(run=_serve)

    data_help = "a corpus folder (prompts.parquet, outcomes.parquet, models.csv) or a RouterBench .parquet/.csv/.pkl"
    tr = sub.add_parser("train", help="train the router on graded outcomes and write a checkpoint")
    tr.add_argument("--data", type=Path, nargs="+", required=True, help=f"{data_help}; several are read as one")
    tr.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    tr.add_argument("--lambda", dest="lambdas", type=float, nargs="*", default=[], help="extra per-λ heads")
    tr.add_argument("--seed", type=int, default=7)
    tr.add_argument("--epochs", type=int, default=100)
    # token windows default to the bundled checkpoint's recipe (TrainConfig)
    tr.add_argument(
        "--max-tokens", type=int, default=argparse.SUPPRESS, help="tokens from the end of a question it learns from"
    )
    tr.add_argument(
        "--serve-max-tokens",
        type=int,
        default=argparse.SUPPRESS,
        help="tokens from the end of a question the router embeds when serving",
    )
    precisions = ("fp32", "int8")
    tr.add_argument("--precision", choices=precisions, default="fp32", help="encoder the network learns from")
    tr.add_argument(
        "--serve-precision",
        choices=precisions,
        default="int8",
        help="encoder the router serves with (int8: ONNX Runtime)",
    )
    tr.add_argument(
        "--judge-model",
        help="a LiteLLM model that judges the rule features instead of the parsers (the paper's way; one call per "
        "prompt, reached with LLMRANK_JUDGE_API_BASE / LLMRANK_JUDGE_API_KEY_ENV); default: parsed, no network",
    )
    tr.add_argument(
        "--source-input",
        action="store_true",
        help="give the network each training prompt's source as an input; serving gives each source's share",
    )
    tr.set_defaults(run=_train)

    ev = sub.add_parser("eval", help="the paper's tables per source, the λ sweeps and a Pareto plot")
    ev.add_argument("--data", type=Path, nargs="+", required=True, help=data_help)
    ev.add_argument("--source", help="score only this source's rows (e.g. mmlu_pro)")
    ev.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    ev.add_argument("--config", type=Path, default=DEFAULT_CONFIG_DIR, help="folder with tiers.yaml")
    ev.add_argument("--json", type=Path, help="write the report as JSON here")
    ev.add_argument("--plot", type=Path, help="write the Pareto plot PNG here")
    ev.set_defaults(run=_eval)

    ro = sub.add_parser("route", help="show which model a prompt goes to, and why")
    ro.add_argument("prompt")
    ro.add_argument("--tier", help="perf | balanced | cost (default: the configured default tier)")
    ro.add_argument("--lambda", dest="lam", type=float, help="any λ instead of the tier's")
    ro.add_argument("--models", type=int, default=15, help="how many profiles to list, best first (0: all)")
    ro.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    ro.add_argument("--config", type=Path, default=DEFAULT_CONFIG_DIR, help="folder with tiers.yaml")
    ro.set_defaults(run=_route)

    ca = sub.add_parser("calibrate", help="fit a new backend's profile from its scored prompts, no retraining")
    ca.add_argument("--backend", help="the profile name to create (use it as `profile:` in models.yaml)")
    ca.add_argument(
        "--data",
        type=Path,
        help="JSONL {prompt, quality, cost?}, a corpus folder (that model's rows) or RouterBench columns",
    )
    ca.add_argument(
        "--from-feedback",
        action="store_true",
        help="fit a profile per backend from POST /v1/feedback scores (Redis stream and LLMRANK_FEEDBACK_FILE)",
    )
    ca.add_argument("--min-rows", type=int, default=10, help="with --from-feedback: fewest scores to fit a backend")
    ca.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    ca.add_argument("--seed", type=int, default=7)
    ca.set_defaults(run=_calibrate)

    co = sub.add_parser(
        "collect", help="a backend's answers to your prompts, graded 1-10 by a judge model, as rows calibrate reads"
    )
    co.add_argument("--prompts", type=Path, required=True, help="JSONL ({prompt} or {messages}) or one prompt per line")
    co.add_argument("--backend", required=True, help="the backend of models.yaml to collect answers from")
    co.add_argument("--judge", required=True, help="a backend of models.yaml, or a LiteLLM model, that grades them")
    co.add_argument("--judge-api-base", help="with a LiteLLM model as the judge: its endpoint")
    co.add_argument("--judge-api-key-env", help="with a LiteLLM model as the judge: the env var holding its key")
    co.add_argument("--out", type=Path, required=True, help="JSONL to append to; prompts already in it are skipped")
    co.add_argument("--concurrency", type=int, default=4, help="prompts in flight at once")
    co.add_argument("--config", type=Path, default=DEFAULT_CONFIG_DIR, help="folder with models.yaml")
    co.set_defaults(run=_collect)
    return parser


def main(argv: list[str] | None = None) -> int:
    _offline_environment()
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"llmrank: invalid configuration: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
