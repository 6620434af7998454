"""HTTP endpoints. Each reads the request, calls the services, and returns; errors are only raised."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import anyio
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.capabilities import needs_of
from gateway.config_store import GatewayConfig
from gateway.conversation import routing_text
from gateway.decisions import decision_record
from gateway.dispatch import CallTrace
from gateway.errors import GatewayError, InvalidRequest, NotFound
from gateway.feedback import RoutedRequest
from gateway.registry import Backend
from gateway.routing import Decision
from gateway.schemas import ROUTING_ALIASES, ChatRequest, parse_chat_request, parse_feedback
from gateway.services import Services, services
from gateway.streaming import streaming_response
from gateway.upstream import PromptTokens

log = structlog.get_logger(__name__)


def resolve_tier(header: str | None, config: GatewayConfig) -> str:
    if header is None or not header.strip():
        return config.tiers.default_tier
    tier = header.strip().lower()
    if tier not in config.tiers.tiers:
        valid = ", ".join(config.tiers.tiers)
        raise InvalidRequest(f"unknown budget tier {header!r}; valid tiers: {valid}", param="X-Budget-Tier")
    return tier


async def decide(
    svc: Services, request: Request, chat: ChatRequest, text: str, prompt: PromptTokens, config: GatewayConfig
) -> Decision:
    """Route `text`, the conversation as the router reads it (`routing_text`)."""
    tier = resolve_tier(request.headers.get("x-budget-tier"), config)
    needs = needs_of(chat, await prompt.count(fallback_text=text))
    expected = svc.settings.expected_output_tokens
    output_tokens = min(needs.output_tokens or expected, expected)
    decision = await svc.engine.decide(text, needs, output_tokens, config, tier)
    log.info(
        "routed",
        tier=tier,
        lam=decision.lam,
        chosen=decision.chosen.name,
        cache=decision.cache,
        route_ms=round(decision.route_ms, 2),
        utilities={c.backend.name: round(c.utility, 4) for c in decision.candidates},
        **({"unfit": [u.backend for u in decision.unfit]} if decision.unfit else {}),
    )
    return decision


def routing_headers(decision: Decision) -> dict[str, str]:
    return {
        "x-llmrank-tier": decision.tier,
        "x-llmrank-lambda": f"{decision.lam:g}",
        "x-llmrank-route-ms": f"{decision.route_ms:.2f}",
        "x-llmrank-cache": decision.cache,
    }


async def chat_completions(request: Request) -> Response:
    svc = services(request)
    raw = await request.body()
    chat = parse_chat_request(raw)
    config = svc.config.current
    body = chat.passthrough()
    prompt = PromptTokens(body["messages"], len(raw))
    headers: dict[str, str] = {}
    decision: Decision | None = None
    routed: RoutedRequest | None = None
    remembered: asyncio.Task[None] | None = None
    trace = CallTrace()
    stored_prompt: str | None = None
    if chat.model in ROUTING_ALIASES:
        text = routing_text(chat.messages)
        stored_prompt = text if svc.settings.store_prompts else None
        decision = await decide(svc, request, chat, text, prompt, config)
        ranked = svc.dispatcher.cooldowns.available([c.backend for c in decision.candidates])
        candidates: list[Backend] = ranked[: 1 + svc.settings.max_fallbacks]
        headers = routing_headers(decision)
        routed = RoutedRequest(
            request.state.request_id,
            candidates[0].name,
            candidates[0].profile,
            decision.vector.to_bytes(),
            svc.engine.router.version,
        )
        remembered = asyncio.create_task(svc.feedback.remember(routed))  # alongside the backend call, not before it
    else:
        backend = config.registry.get(chat.model)
        if backend is None:
            known = ", ".join([*ROUTING_ALIASES, *(b.name for b in config.registry.enabled)])
            raise NotFound(f"unknown model {chat.model!r}; available: {known}", param="model", code="model_not_found")
        candidates = [backend]
    try:
        response, answered_by = await answer(svc, chat, body, prompt, candidates, headers, trace)
    except GatewayError as failure:
        if decision is not None:
            await log_decision(svc, request, chat, decision, trace, stored_prompt, failure)
        raise
    finally:
        if remembered is not None:
            await remembered  # stored before the client can send feedback for this request
    if routed is not None and decision is not None:
        record_routed_answer(svc, decision, answered_by)
        if answered_by.name != routed.backend:  # a fallback answered: feedback is about it
            await svc.feedback.remember(replace(routed, backend=answered_by.name, profile=answered_by.profile))
        response.background = BackgroundTask(log_decision, svc, request, chat, decision, trace, stored_prompt)
    return response


async def log_decision(
    svc: Services,
    request: Request,
    chat: ChatRequest,
    decision: Decision,
    trace: CallTrace,
    prompt: str | None,
    failure: GatewayError | None = None,
) -> None:
    """Into the decisions log once the answer is out (a stream's once it has ended and is priced); `prompt` only
    where prompts are stored."""
    if svc.decisions is None:
        return
    record = decision_record(decision, trace, request.state.request_id, svc.replica, chat.stream, failure, prompt)
    svc.decisions.record(record)


def record_routed_answer(svc: Services, decision: Decision, backend: Backend) -> None:
    """The router's estimates for the backend that answered, beside the actual spend the dispatcher records."""
    candidate = next(c for c in decision.candidates if c.backend.name == backend.name)
    svc.metrics.estimated_spend.labels(backend.name).inc(candidate.cost)
    svc.metrics.predicted_quality.labels(backend.name, decision.tier).observe(candidate.quality)


async def answer(
    svc: Services,
    chat: ChatRequest,
    body: dict[str, Any],
    prompt: PromptTokens,
    candidates: list[Backend],
    headers: dict[str, str],
    trace: CallTrace,
) -> tuple[Response, Backend]:
    """The first candidate that answers, as JSON or as a stream, and which one it was."""
    tier_label = headers.get("x-llmrank-tier", "passthrough")
    if chat.stream:
        stream = await svc.dispatcher.open_stream(candidates, body, prompt, trace)
        svc.metrics.selections.labels(stream.backend.name, tier_label).inc()
        return streaming_response(stream, {**headers, "x-llmrank-model": stream.backend.name}), stream.backend
    answered = await svc.dispatcher.complete(candidates, body, prompt, trace)
    svc.metrics.selections.labels(answered.backend.name, tier_label).inc()
    response = JSONResponse(answered.payload, headers={**headers, "x-llmrank-model": answered.backend.name})
    return response, answered.backend


async def route_only(request: Request) -> Response:
    """The routing decision and why, without calling a backend."""
    svc = services(request)
    raw = await request.body()
    chat = parse_chat_request(raw)
    config = svc.config.current
    prompt = PromptTokens(chat.wire_messages(), len(raw))
    decision = await decide(svc, request, chat, routing_text(chat.messages), prompt, config)
    explained = await anyio.to_thread.run_sync(svc.engine.explain, decision.vector, decision.chosen.profile)
    return JSONResponse(
        {
            "model": decision.chosen.name,
            "tier": decision.tier,
            "lambda": decision.lam,
            "cache": decision.cache,
            "route_ms": round(decision.route_ms, 3),
            "candidates": [
                {
                    "backend": c.backend.name,
                    "profile": c.backend.profile,
                    "utility": c.utility,
                    "predicted_quality": c.quality,
                    "estimated_cost": c.cost,
                }
                for c in decision.candidates
            ],
            "unfit": [{"backend": u.backend, "reason": u.reason, "detail": u.detail} for u in decision.unfit],
            "attributions": explained,
        },
        headers=routing_headers(decision) | {"x-llmrank-model": decision.chosen.name},
    )


async def feedback(request: Request) -> Response:
    """A 0–1 outcome score for an earlier routed request, stored with its features for calibration."""
    svc = services(request)
    report = parse_feedback(await request.body())
    routed = await svc.feedback.record(report.request_id, report.score)
    if routed is None:
        raise NotFound(
            f"no routed request {report.request_id!r} (unknown, not routed with model=auto, or older than "
            f"{svc.settings.feedback_ttl_s} s)",
            param="request_id",
            code="request_not_found",
        )
    svc.metrics.feedback_score.labels(routed.backend).observe(report.score)
    if svc.decisions is not None:
        svc.decisions.record_feedback(routed.request_id, routed.backend, report.score)
    return JSONResponse({"status": "recorded", "request_id": routed.request_id, "backend": routed.backend})


async def list_models(request: Request) -> Response:
    config = services(request).config.current
    data = [{"id": alias, "object": "model", "created": 0, "owned_by": "llmrank"} for alias in ROUTING_ALIASES]
    data += [
        {"id": b.name, "object": "model", "created": 0, "owned_by": "llmrank-backend", "profile": b.profile}
        for b in config.registry.enabled
    ]
    return JSONResponse({"object": "list", "data": data})


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc: Services | None = getattr(request.app.state, "services", None)
    if svc is None:
        return JSONResponse({"ready": False, "router": "loading"}, status_code=503)
    if request.app.state.draining.is_set():  # shutting down: the load balancer should send no more
        return JSONResponse({"ready": False, "draining": True}, status_code=503)
    redis_state = await svc.cache.redis.ping()
    svc.metrics.redis_up.set(1 if redis_state == "up" else 0)
    return JSONResponse(
        {
            "ready": True,
            "router": {"version": svc.engine.router.version, "profiles": len(svc.engine.router.profiles)},
            "config": {
                "backends": [b.name for b in svc.config.current.registry.enabled],
                "last_reload_error": svc.config.last_error,
            },
            "redis": redis_state,
        }
    )


async def metrics(request: Request) -> Response:
    return Response(generate_latest(services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/route", route_only, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/feedback", feedback, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
