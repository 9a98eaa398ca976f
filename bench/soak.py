"""Soak: mixed traffic for minutes while the worker recycles; zero failures allowed.

    .venv-dev/bin/python -m bench.soak [--seconds 600 | --short] [--max-requests 120] [--database-url URL] [--write]

Starts the real site (runtime environment, gunicorn_config.py) with a low
GUNICORN_MAX_REQUESTS so the worker is replaced several times, sends bounded loops of
form and image predictions and history pages from two clients, probes /health/ every
second as Render does, and samples master + worker PSS. Exits non-zero on any failed
request, any 5xx, or peak PSS over 512 MB. The plot (PSS per worker lifetime) needs
matplotlib, so run it from the training environment; the server never imports it.
"""
from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

from bench.harness import ROOT, PssSampler, Site, health_probes, payloads, percentile, run_together
from bench.report import command_line, header, parser, write_section

LIMIT_MB = 512


class Soak:
    def __init__(self, site: Site, seconds: float):
        self.site, self.seconds = site, seconds
        self.stop = threading.Event()
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.health: list[float] = []
        self.samples: list[tuple[float, int, float, float]] = []  # t, worker pid, worker MB, total MB
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def record(self, label: str, status: int | None, error: str | None = None) -> None:
        with self.lock:
            if status is None or status >= 500:
                self.failures.append(f"{label}: {status or error}")
            self.statuses[f"{label} {status}"] += 1

    def client(self, index: int, cookie: str) -> None:
        inputs = payloads()
        plan = ["diabetes", "retina", "heart", "history", "ecg", "diabetes", "history-page"]
        step = index
        while not self.stop.is_set():
            kind = plan[step % len(plan)]
            step += 1
            try:
                if kind.startswith("history"):
                    status, _, _ = self.site.request("GET", "/history/" if kind == "history" else "/",
                                                     headers={"Cookie": cookie}, timeout=60)
                else:
                    status, _, _ = self.site.predict(kind, inputs[kind])
                self.record(kind, status)
            except (OSError, http.client.HTTPException) as exc:
                self.record(kind, None, type(exc).__name__)

    def prober(self) -> None:
        for probe in health_probes(self.site, every=1.0, timeout=5, stop=self.stop):
            if probe.status is not None:
                self.health.append(probe.seconds * 1000)
            self.record("health", probe.status, probe.error)

    def run(self, cookie: str) -> None:
        with PssSampler(self.site, every=0.5) as memory:
            run_together([partial(self.client, 0, cookie), partial(self.client, 1, cookie), self.prober],
                         self.stop, self.seconds, join_timeout=120)
        self.samples = [(sample.at - self.started, pid, worker, worker + sample.master_mb)
                        for sample in memory.samples for pid, worker in sample.workers_mb.items()]

    def lifetimes(self) -> list[dict]:
        order: list[int] = []
        by_pid: dict[int, list[tuple[float, float]]] = {}
        for t, pid, worker, _ in self.samples:
            if pid not in by_pid:
                order.append(pid)
                by_pid[pid] = []
            by_pid[pid].append((t, worker))
        return [{"pid": pid, "start_s": round(by_pid[pid][0][0], 1), "samples": len(by_pid[pid]),
                 "peak_mb": round(max(w for _, w in by_pid[pid]), 1),
                 "last_mb": round(by_pid[pid][-1][1], 1)} for pid in order]


def login_cookie(site: Site) -> str:
    site.manage("shell", "-c", "from django.contrib.auth import get_user_model as g; "
                "u = g().objects.filter(username='soak').first() or g().objects.create_user('soak'); "
                "u.set_password('soak-password-123'); u.save()")
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    connection.request("GET", "/accounts/login/")
    response = connection.getresponse()
    page = response.read().decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = f"username=soak&password=soak-password-123&csrfmiddlewaretoken={token}"
    connection.request("POST", "/accounts/login/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}",
        "Referer": f"http://127.0.0.1:{site.port}/accounts/login/"})
    response = connection.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    connection.close()
    return f"sessionid={session}; csrftoken={csrf_cookie}"


def plot(lifetimes_samples: list[tuple[float, int, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    pids: list[int] = []
    for _, pid, _, _ in lifetimes_samples:
        if pid not in pids:
            pids.append(pid)
    for n, pid in enumerate(pids):
        points = [(t, total) for t, p, _, total in lifetimes_samples if p == pid]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=f"worker {n + 1}" if n < 12 else None)
    ax.axhline(LIMIT_MB, color="#a4262c", linestyle="--", linewidth=1, label="512 MB instance")
    ax.set(xlabel="seconds into the soak", ylabel="master + worker PSS (MB)",
           title="PSS per worker lifetime (each colour is one worker until it recycles)")
    ax.set_ylim(0, LIMIT_MB * 1.1)
    ax.legend(fontsize=6, ncol=4, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    options = parser(__doc__)
    options.add_argument("--seconds", type=float, default=600)
    options.add_argument("--short", action="store_true", help="60 s, for CI")
    options.add_argument("--max-requests", type=int, default=None)
    options.add_argument("--artifacts", type=Path, default=None, help="default: the shipped demo models")
    options.add_argument("--plot", type=Path, default=None, help="where to write the PSS plot (PNG)")
    options.add_argument("--database-url", default=None,
                         help="the server's database (migrated at start); default: a temporary SQLite file")
    args = options.parse_args()
    seconds = 60 if args.short else args.seconds
    max_requests = args.max_requests or (60 if args.short else 150)
    extra_env = {"GUNICORN_MAX_REQUESTS": str(max_requests), "GUNICORN_MAX_REQUESTS_JITTER": str(max_requests // 5)}
    if args.database_url:
        extra_env["DATABASE_URL"] = args.database_url
    site = Site(artifacts=args.artifacts, extra_env=extra_env)
    site.start()
    try:
        soak = Soak(site, seconds)
        soak.run(login_cookie(site))
    finally:
        site.stop()
    lifetimes = soak.lifetimes()
    peak = max((s[3] for s in soak.samples), default=0.0)
    peaks = [lt["peak_mb"] for lt in lifetimes if lt["samples"] >= 4]
    slope = 0.0
    if len(peaks) >= 3:
        xs = list(range(len(peaks)))
        mean_x, mean_y = sum(xs) / len(xs), sum(peaks) / len(peaks)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, peaks, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    requests = sum(n for k, n in soak.statuses.items() if not k.startswith("health"))
    summary = {
        "seconds": seconds, "max_requests": max_requests, "requests": requests,
        "health_probes": sum(n for k, n in soak.statuses.items() if k.startswith("health")),
        "failures": len(soak.failures), "failure_examples": soak.failures[:5],
        "statuses": dict(soak.statuses), "worker_lifetimes": len(lifetimes),
        "peak_pss_mb": round(peak, 1), "worker_peak_mb_per_lifetime": peaks,
        "peak_trend_mb_per_lifetime": round(slope, 2),
        "health_p50_ms": round(percentile(soak.health, 50), 1) if soak.health else None,
        "health_p99_ms": round(percentile(soak.health, 99), 1) if soak.health else None,
    }
    print(json.dumps(summary, indent=1))
    if args.plot or args.write:
        target = args.plot or ROOT / "docs" / "soak-pss.png"
        plot(soak.samples, target)
        print(f"plot written to {target}")
    ok = summary["failures"] == 0 and peak < LIMIT_MB and summary["worker_lifetimes"] >= 2
    if args.write:
        text = (f"{header(command_line(options, args))} (server in the runtime "
                f"environment, `GUNICORN_MAX_REQUESTS={max_requests}`): {requests} requests and "
                f"{summary['health_probes']} health probes in {int(seconds)} s, {summary['failures']} failed, "
                f"{summary['worker_lifetimes']} worker lifetimes, peak master + worker PSS {summary['peak_pss_mb']} MB, "
                f"trend of per-lifetime peak {summary['peak_trend_mb_per_lifetime']} MB per lifetime, /health/ "
                f"p50 {summary['health_p50_ms']} ms, p99 {summary['health_p99_ms']} ms. "
                f"Statuses: {dict(sorted(soak.statuses.items()))}.\n\n![PSS per worker lifetime](soak-pss.png)")
        write_section("soak", text)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
