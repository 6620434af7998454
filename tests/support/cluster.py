"""A small production-like deployment on loopback: a Redis server of its own, gateway replicas as real `llmrank
serve` processes, and nginx balancing them round-robin (deploy/nginx/llmrank.conf with local ports).

For the scale-out tests (`make scale-test`) and the balancer's benchmark (`bench.scale_out`); every process it starts
it stops, and everything it writes lies in one temporary folder.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gateway_overhead import bench_env, wait_ready
from gateway.settings import PROJECT_ROOT
from tests.support.config import write_config
from tests.support.servers import free_port

NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx" / "llmrank.conf"


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@dataclass
class LocalProcess:
    """A process of the deployment, on a free loopback port."""

    port: int = field(default_factory=free_port, kw_only=True)
    proc: subprocess.Popen[bytes] | None = field(default=None, kw_only=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; its exit status."""
        assert self.proc is not None
        return stop(self.proc)


@dataclass
class RedisServer(LocalProcess):
    """redis-server keeping nothing on disk, so that a test can kill it and start it again."""

    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is needed (Debian: apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@dataclass
class Replica(LocalProcess):
    name: str
    folder: Path
    backends: list[dict[str, Any]]
    settings: Mapping[str, str]

    def start(self) -> None:
        config = self.folder / f"{self.name}-config"
        write_config(config, self.backends)
        args = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port), "--config", str(config)]
        env = {**bench_env(), "LLMRANK_LOG_FORMAT": "json", "LLMRANK_LOG_LEVEL": "WARNING", **self.settings}
        self.log = (self.folder / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_ready(f"{self.url}/readyz", self.proc)


@dataclass
class Balancer(LocalProcess):
    """nginx with the deploy/nginx config, its upstreams set to the replicas' loopback ports."""

    folder: Path
    replicas: list[Replica]

    def start(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is needed (Debian: apt-get install nginx-light)")
        prefix = self.folder / "nginx"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;" for r in self.replicas)
        site = NGINX_TEMPLATE.read_text().replace("    server gateway-1:8080;\n    server gateway-2:8080;", servers)
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        conf = prefix / "nginx.conf"
        conf.write_text(
            "worker_processes 1;\nerror_log logs/error.log warn;\npid logs/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n  client_body_temp_path logs/body;\n  proxy_temp_path logs/proxy;\n"
            "  fastcgi_temp_path logs/fastcgi;\n  uwsgi_temp_path logs/uwsgi;\n  scgi_temp_path logs/scgi;\n"
            f"{site}\n}}\n"
        )
        args = [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(f"{self.url}/healthz", self.proc, timeout=20)
