"""`create_app(settings)` → the Starlette app. Nothing is read at import; everything is built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Mapping

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware

from gateway.cache import FeatureCache, RedisLink
from gateway.config_store import ConfigStore
from gateway.cooldown import Cooldowns
from gateway.dashboard import DASHBOARD_ROUTES
from gateway.decisions import DecisionLog
from gateway.direct import DirectUpstream
from gateway.dispatch import Dispatcher
from gateway.errors import EXCEPTION_HANDLERS
from gateway.feedback import FeedbackStore
from gateway.metrics import Metrics
from gateway.middleware import AuthMiddleware, BodyLimitMiddleware, RequestContextMiddleware
from gateway.routes import ROUTES
from gateway.routing import RoutingEngine
from gateway.services import Services
from gateway.settings import Settings
from gateway.shared_cooldown import SharedCooldowns
from gateway.upstream import Upstream
from gateway.upstream import warm_up as upstream_warm_up
from router_model.calibrate import calibrated_names
from router_model.router import Router, profile_names

log = structlog.get_logger(__name__)


def create_app(settings: Settings, router: Router | None = None, environ: Mapping[str, str] | None = None) -> Starlette:
    """Validate config now (a bad file stops start-up); load the router and connect the cache in the lifespan."""
    metrics = Metrics()
    environ = os.environ if environ is None else environ
    profiles = router.profile_names if router is not None else _checkpoint_profiles(settings)
    config = ConfigStore(settings.models_file, settings.tiers_file, profiles, environ, metrics)
    judge_connection = settings.judge_connection(environ)
    draining = threading.Event()  # set by the server on SIGTERM (gateway.draining), from its signal handler

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loaded = (
            router
            if router is not None
            else await asyncio.to_thread(
                Router.load, settings.checkpoint, threads=settings.scoring_threads, judge_connection=judge_connection
            )
        )
        if settings.judge_configured and loaded.judge is None:
            log.warning("judge_unused", reason="the checkpoint's rule features are parsed, not judged")
        await asyncio.to_thread(loaded.warm_up)
        await asyncio.to_thread(upstream_warm_up)
        freeze_startup_objects()
        redis = RedisLink(settings.redis_url)
        log.info("redis", state=await redis.ping())
        cache = FeatureCache(redis, settings.cache_ttl_s, settings.cache_max_entries)
        upstream = Upstream(
            lambda: config.current.api_keys, settings.upstream_timeout_s, prices=lambda: config.current.prices
        )
        direct = DirectUpstream(lambda: config.current.api_keys, settings.upstream_timeout_s)
        decisions = DecisionLog(redis, settings.decisions_max) if settings.decisions_log else None
        backend_cooldowns = SharedCooldowns(settings.cooldown_failures, settings.cooldown_s, redis)
        app.state.services = Services(
            settings=settings,
            config=config,
            engine=RoutingEngine(
                loaded,
                cache,
                metrics,
                settings.cache_max_entries,
                settings.scoring_slots,
                Cooldowns(settings.cooldown_failures, settings.cooldown_s),
            ),
            dispatcher=Dispatcher(upstream, direct, metrics, backend_cooldowns),
            cache=cache,
            feedback=FeedbackStore(redis, settings.feedback_file, settings.feedback_ttl_s),
            metrics=metrics,
            decisions=decisions,
            replica=f"{socket.gethostname()}:{os.getpid()}",
        )
        watcher = asyncio.create_task(config.watch(settings.reload_interval_s))
        writer = asyncio.create_task(decisions.run()) if decisions is not None else None
        cooldown_listener = asyncio.create_task(backend_cooldowns.listen())
        log.info(
            "ready",
            backends=[b.name for b in config.current.registry.enabled],
            router=loaded.version,
            judge=loaded.judge.model if loaded.judge else None,
        )
        try:
            yield
        finally:
            watcher.cancel()
            cooldown_listener.cancel()
            await backend_cooldowns.close()
            if writer is not None:
                writer.cancel()
                await decisions.flush()  # type: ignore[union-attr]
            await direct.close()
            await cache.flush()
            await redis.close()

    routes = ROUTES + DASHBOARD_ROUTES
    endpoints = frozenset(getattr(r, "path", "") for r in routes)
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(RequestContextMiddleware, metrics=metrics, endpoints=endpoints, draining=draining),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(AuthMiddleware, keys=settings.api_keys),
        ],
        lifespan=lifespan,
    )
    app.state.draining = draining
    return app


def freeze_startup_objects() -> None:
    """Put everything loaded at start-up (torch, transformers, LiteLLM's tables: about 600,000 objects) beyond the
    garbage collector's reach. Otherwise each full collection walks them all and stops the event loop for 300–400 ms,
    which at 64 clients happened about every 3.5 s."""
    gc.collect()
    gc.freeze()


def _checkpoint_profiles(settings: Settings) -> dict[str, str]:
    """Trained and calibrated profiles and the trained models' other names, from the checkpoint's metadata, so config
    errors surface before the weights load."""
    meta = json.loads((settings.checkpoint / "router.json").read_text())
    return profile_names(tuple(meta["models"]) + calibrated_names(settings.checkpoint), meta.get("aliases", {}))
