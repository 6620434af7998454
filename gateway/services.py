"""What endpoints work with, built once in the app's lifespan and injected (tests build their own)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.cache import FeatureCache
from gateway.config_store import ConfigStore
from gateway.decisions import DecisionLog
from gateway.dispatch import Dispatcher
from gateway.errors import ServiceUnavailable
from gateway.feedback import FeedbackStore
from gateway.metrics import Metrics
from gateway.routing import RoutingEngine
from gateway.settings import Settings


@dataclass
class Services:
    settings: Settings
    config: ConfigStore
    engine: RoutingEngine
    dispatcher: Dispatcher
    cache: FeatureCache
    feedback: FeedbackStore
    metrics: Metrics
    decisions: DecisionLog | None = None  # None: the log is off (LLMRANK_DECISIONS_LOG=false)
    replica: str = ""  # host:pid, on each decision recorded


def services(request: Request) -> Services:
    """The app's services, or 503 while the router is still loading."""
    svc: Services | None = getattr(request.app.state, "services", None)
    if svc is None:
        raise ServiceUnavailable("the router is still loading")
    return svc
