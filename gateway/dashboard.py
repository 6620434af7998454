"""The dashboard: the page at `/ui` and the JSON it reads under `/ui/api/` (gateway keys needed where they are set).

The page and its assets (`gateway/static/`, uPlot vendored with its licence) hold no data; everything it shows
comes from these endpoints, built from the decisions log, the live config and the cool-downs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.config_store import GatewayConfig
from gateway.decision_stats import WINDOWS_S, quality_by_backend, spend_and_traffic
from gateway.decisions import DecisionLog
from gateway.errors import InvalidRequest, NotFound
from gateway.registry import Backend
from gateway.services import Services, services
from router_model.router import PromptVector

STATIC_DIR = Path(__file__).resolve().parent / "static"
FILTERS = ("tier", "backend", "outcome")
MAX_LIMIT = 1000


async def page(_request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})


def decision_log(svc: Services) -> DecisionLog:
    if svc.decisions is None:
        raise NotFound("the decisions log is off (LLMRANK_DECISIONS_LOG=false)", code="decisions_log_off")
    return svc.decisions


async def session(request: Request) -> Response:
    """What the page says about itself: whether keys guard it, where its decisions come from."""
    svc = services(request)
    source, kept = await svc.decisions.size() if svc.decisions is not None else (None, 0)
    return JSONResponse(
        {
            "auth_required": bool(svc.settings.api_keys),
            "decisions_log": svc.decisions is not None,
            "source": source,
            "decisions_kept": kept,
            "decisions_max": svc.settings.decisions_max,
            "store_prompts": svc.settings.store_prompts,
            "router": svc.engine.router.version,
            "replica": svc.replica,
        }
    )


async def decisions(request: Request) -> Response:
    """`GET /ui/api/decisions?limit=N[&tier=…][&backend=…][&outcome=ok|fallback|error]`, newest first."""
    log = decision_log(services(request))
    limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)
    wanted = {k: request.query_params[k] for k in FILTERS if request.query_params.get(k)}
    if wanted:
        source, summaries = await log.summaries()
        matching = [s.id for s in reversed(summaries) if all(str(getattr(s, k)) == v for k, v in wanted.items())]
        items = await log.get_many(matching[:limit])
    else:
        source, items = await log.recent(limit)
    scores = await log.feedback()
    shown = [r | {"feedback_score": scores.get(r["request_id"])} for r in items]
    return JSONResponse({"source": source, "filters": wanted, "items": shown})


async def decision(request: Request) -> Response:
    """One decision with the features that pushed it most, computed now (a worker thread, off the request path)."""
    svc = services(request)
    log = decision_log(svc)
    found = await log.get(request.path_params["entry_id"])
    if found is None:
        raise NotFound(f"no decision {request.path_params['entry_id']!r} in the log", code="decision_not_found")
    found["feedback_score"] = (await log.feedback()).get(found["request_id"])
    vector = await _cached_vector(svc, found)
    explained_for = found["backend"] or found["chosen"]
    profile = next((c["profile"] for c in found["candidates"] if c["backend"] == explained_for), None)
    if vector is None or profile not in svc.engine.router.profiles:
        found["attributions"], found["attributions_for"] = None, None
    else:
        found["attributions"] = await anyio.to_thread.run_sync(svc.engine.explain, vector, profile)
        found["attributions_for"] = explained_for
    return JSONResponse(found)


async def _cached_vector(svc: Services, record: dict[str, Any]) -> PromptVector | None:
    """The prompt's features from the feature cache, else from what feedback remembers of the request."""
    blob = await svc.cache.get(record["features_key"])
    if blob is None:
        routed = await svc.feedback.lookup(record["request_id"])
        blob = routed.vector if routed is not None and routed.router_version == svc.engine.router.version else None
    return None if blob is None else PromptVector.from_bytes(blob, len(svc.engine.router.featurizer.names))


async def summary(request: Request) -> Response:
    """`GET /ui/api/summary?window=15m|1h|24h`: spend, traffic and latency over the window."""
    log = decision_log(services(request))
    window = request.query_params.get("window", "1h")
    if window not in WINDOWS_S:
        raise InvalidRequest(f"unknown window {window!r}; valid: {', '.join(WINDOWS_S)}", param="window")
    now = time.time()
    source, summaries = await log.summaries()
    stats = spend_and_traffic(summaries, WINDOWS_S[window], now)
    return JSONResponse({"source": source, "window": window, **stats})


async def quality(request: Request) -> Response:
    """`GET /ui/api/quality`: per backend, mean predicted quality of its answers against mean feedback."""
    log = decision_log(services(request))
    source, summaries = await log.summaries()
    rows = quality_by_backend(summaries, await log.feedback())
    return JSONResponse({"source": source, "decisions": len(summaries), "backends": rows})


async def pool(request: Request) -> Response:
    """`GET /ui/api/pool`: every backend of the live config, its profile, prices, limits, transport, cool-down."""
    svc = services(request)
    config = svc.config.current
    return JSONResponse(
        {
            "backends": [_backend_view(svc, config, b) for b in config.registry.enabled],
            "disabled": [b.name for b in config.registry.backends if not b.enabled],
            "last_reload_error": svc.config.last_error,
            "redis": svc.cache.redis.state,
            "router": svc.engine.router.version,
            "tiers": {"default": config.tiers.default_tier, "lambda": dict(config.tiers.tiers)},
        }
    )


def _backend_view(svc: Services, config: GatewayConfig, backend: Backend) -> dict[str, Any]:
    """`config`: the one live config the whole view is read from (a reload meanwhile does not mix two)."""
    input_price, output_price = config.prices[backend.name]
    limits = config.capabilities[backend.name]
    return {
        "name": backend.name,
        "profile": backend.profile,
        "profile_kind": _profile_kind(svc, config, backend),
        "litellm_model": backend.litellm_model,
        "transport": backend.transport,
        "call_transport": backend.call_transport,
        "server": _server(backend.api_base),
        "demo": backend.demo,
        "dollars_per_million_tokens": {"input": input_price * 1e6, "output": output_price * 1e6},
        "quality_offset": backend.quality_offset,
        "limits": {
            "max_input_tokens": limits.max_input_tokens,
            "max_output_tokens": limits.max_output_tokens,
            "vision": limits.vision,
            "tools": limits.tools,
            "audio": limits.audio,
            "files": limits.files,
        },
        "cooldown": svc.dispatcher.cooldowns.state(backend.name),
    }


def _profile_kind(svc: Services, config: GatewayConfig, backend: Backend) -> str:
    if backend.name in config.borrowed:
        return "borrowed"
    return "trained" if backend.profile in svc.engine.router.checkpoint.models else "calibrated"


def _server(api_base: str | None) -> str | None:
    """Scheme, host and port only: a URL's user, password or query could hold a secret."""
    if not api_base:
        return None
    parts = urlsplit(api_base)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}", param=name)
    return int(raw)


DASHBOARD_ROUTES = [
    Route("/ui", page, methods=["GET"]),
    Route("/ui/", page, methods=["GET"]),
    Mount("/ui/static", app=StaticFiles(directory=STATIC_DIR), name="ui-static"),
    Route("/ui/api/session", session, methods=["GET"]),
    Route("/ui/api/decisions", decisions, methods=["GET"]),
    Route("/ui/api/decisions/{entry_id}", decision, methods=["GET"]),
    Route("/ui/api/summary", summary, methods=["GET"]),
    Route("/ui/api/quality", quality, methods=["GET"]),
    Route("/ui/api/pool", pool, methods=["GET"]),
]
