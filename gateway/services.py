"""What endpoints work with, built once in the app's lifespan and injected (tests build their own)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.cache import FeatureCache
from gateway.config_store import ConfigStore
from gateway.dispatch import Dispatcher
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
