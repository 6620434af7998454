"""uvicorn with the drain a load balancer needs before a replica goes away.

On SIGTERM `/readyz` fails at once while requests are still served for `drain_s`, so the balancer's health checks
(or Kubernetes' endpoints) take the replica out of rotation before it stops listening; then the socket closes, and
requests and streams under way get up to `grace_s` to finish (uvicorn's `timeout_graceful_shutdown`) before the
lifespan shuts down and the process exits 0. SIGINT (Ctrl-C) skips the drain; a second one stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import structlog
import uvicorn

log = structlog.get_logger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_s: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.on_drain = on_drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Not uvicorn's: that one re-raises the signal once the server has stopped, so a drained replica would
        end killed by SIGTERM (status 143) instead of exiting 0."""
        first = not self._draining
        self._draining = True
        if first:
            self.on_drain()
        if first and sig == signal.SIGTERM and self.drain_s > 0:
            log.info("draining", seconds=self.drain_s, then="stop accepting, finish what is under way")
            timer = threading.Timer(self.drain_s, self._stop)
            timer.daemon = True
            timer.start()
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self._stop()

    def _stop(self) -> None:
        log.info("stopping", grace_s=self.config.timeout_graceful_shutdown)
        self.should_exit = True


def serve(app: object, host: str, port: int, drain_s: float, grace_s: float, on_drain: Callable[[], None]) -> None:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(grace_s) if grace_s >= 1 else 1,
    )
    DrainingServer(config, drain_s, on_drain).run()
