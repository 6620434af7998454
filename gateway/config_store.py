"""The live configuration: loaded and validated at start-up, re-read when the files change, last good kept."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.capabilities import Capabilities, capabilities_of
from gateway.metrics import Metrics
from gateway.registry import ConfigError, Registry, Tiers, load_registry, load_tiers, resolve_api_keys
from gateway.upstream import model_map_entry, prices

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GatewayConfig:
    registry: Registry
    tiers: Tiers
    api_keys: Mapping[str, str]
    prices: Mapping[str, tuple[float, float]]  # backend → dollars per (input, output) token
    capabilities: Mapping[str, Capabilities]  # backend → what requests it can take
    borrowed: frozenset[str]  # backends scored by another model's profile (not their own, under any of its names)


def load_gateway_config(
    models_file: Path, tiers_file: Path, profiles: Mapping[str, str] | Sequence[str], environ: Mapping[str, str]
) -> GatewayConfig:
    """`profiles`: every name a backend's `profile:` may use → the router profile it means (another source's name
    for a trained model means that model); a plain list names each profile as itself."""
    names = profiles if isinstance(profiles, Mapping) else {p: p for p in profiles}
    registry = with_canonical_profiles(load_registry(models_file), names, models_file)
    try:
        backend_prices = {b.name: prices(b) for b in registry.enabled}
        api_keys = resolve_api_keys(registry, environ)
    except ConfigError as exc:
        raise ConfigError(f"{models_file}: {exc}") from exc
    capabilities = {b.name: capabilities_of(b, model_map_entry(b)) for b in registry.enabled}
    borrowed = frozenset(b.name for b in registry.enabled if names.get(b.name, b.name) != b.profile)
    return GatewayConfig(registry, load_tiers(tiers_file), api_keys, backend_prices, capabilities, borrowed)


def with_canonical_profiles(registry: Registry, names: Mapping[str, str], models_file: Path) -> Registry:
    """Each backend's profile as the router names it; an unknown one is a config error that suggests close names."""
    backends = []
    for i, backend in enumerate(registry.backends):
        if backend.profile not in names:
            close = difflib.get_close_matches(backend.profile, list(names), n=5, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"known profiles: {', '.join(sorted(set(names.values())))}"
            )
            raise ConfigError(
                f"{models_file}: backends[{i}].profile: {backend.profile!r} is not a router profile; {hint}"
            )
        backends.append(backend.model_copy(update={"profile": names[backend.profile]}))
    return registry.model_copy(update={"backends": tuple(backends)})


class ConfigStore:
    def __init__(
        self,
        models_file: Path,
        tiers_file: Path,
        profiles: Mapping[str, str] | Sequence[str],
        environ: Mapping[str, str],
        metrics: Metrics,
    ) -> None:
        self.files = (models_file, tiers_file)
        self._profiles = dict(profiles) if isinstance(profiles, Mapping) else {p: p for p in profiles}
        self._environ = environ
        self._metrics = metrics
        self._stamp = self._read_stamp()
        self._seen = self._stamp  # the files as the last look found them: a change is read once it holds still
        self._borrowed_announced: set[tuple[str, str]] = set()
        self.current = load_gateway_config(models_file, tiers_file, self._profiles, environ)
        self.last_error: str | None = None
        self._announce_borrowed_profiles()

    def _read_stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self.files:
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((-1, -1))
        return tuple(stamps)

    def reload_if_changed(self) -> bool:
        """Swap in the new config when a file changed and is valid; otherwise keep serving the last good one.

        A change is read only when a second look finds the files as the first did, so a file caught half-written
        (an editor truncates, then writes) is not rejected on the way to its new content.
        """
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        if stamp != self._seen:
            self._seen = stamp
            return False
        self._stamp = stamp
        try:
            self.current = load_gateway_config(*self.files, self._profiles, self._environ)
        except ConfigError as exc:
            self.last_error = str(exc)
            self._metrics.config_reloads.labels("rejected").inc()
            log.error("config_reload_rejected", error=str(exc), keeping="last good config")
            return False
        self.last_error = None
        self._announce_borrowed_profiles()
        self._metrics.config_reloads.labels("applied").inc()
        log.info("config_reloaded", backends=[b.name for b in self.current.registry.enabled])
        return True

    def _announce_borrowed_profiles(self) -> None:
        """One line for the whole pool (how many backends have a profile of their own), then each backend scored
        by another model's profile once, so nobody mistakes it for calibrated."""
        enabled = self.current.registry.enabled
        borrowed = [b.name for b in enabled if b.name in self.current.borrowed]
        log.info("backend_profiles", backends=len(enabled), own_profile=len(enabled) - len(borrowed), borrowed=borrowed)
        for backend in enabled:
            key = (backend.name, backend.profile)
            if backend.name in self.current.borrowed and key not in self._borrowed_announced:
                self._borrowed_announced.add(key)
                log.info(
                    "profile_borrowed",
                    backend=backend.name,
                    profile=backend.profile,
                    quality_offset=backend.quality_offset,
                    hint="run `llmrank calibrate` with this backend's scored prompts for a profile of its own",
                )

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.reload_if_changed()
