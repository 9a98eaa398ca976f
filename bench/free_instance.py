"""The site on a simulated Render free instance: 0.1 CPU and 512 MB, probed as Render probes.

    .venv/bin/python -m bench.free_instance [--burst-seconds 30] [--long-burst-seconds 60] [--write]

Runs the real server (gunicorn_config.py, the runtime environment .venv, render.yaml's
own environment variables) inside a cgroup v1 of a tenth of a CPU
(cpu.cfs_quota_us 10000 per cfs_period_us 100000) and 512 MB (memory.limit_in_bytes,
swap included). Needs root and the cgroup v1 cpu and memory controllers; where the
cgroups cannot be made it says why and exits 2. The memory cgroup is made inside the
one this process runs in, the cpu cgroup at the controller's root; both are removed.

Measures, over HTTP on loopback:
- boot: from starting gunicorn to the first /health/ 200 (when Render sends traffic);
- the first answer of each model sent at that moment, forms first, as a visitor after a
  spin-down meets them (Django's own start-up included), then warm round trips (p50/p95);
- bursts of 1, 2, 4 and 8 clients uploading images (retina and ECG in turn, each retrying
  after a 503's Retry-After) plus one client sending forms, with /health/ probed every
  0.5 s with Render's 5 s timeout: answers by status, round trips, probe latencies;
- the same 8-upload burst with the worker recycled every 25 requests (GUNICORN_MAX_REQUESTS=25);
- peak memory (the cgroup's own peak, page cache included, and the processes' PSS sampled
  every 0.5 s), limit hits (memory.failcnt), OOM kills, CPU throttling, and the worker
  timeouts, kills and aborts gunicorn logged.
--write records the figures in docs/benchmarks.md ("Free instance").
"""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

from bench.harness import MODELS, ROOT, PssSampler, Site, health_probes, payloads, percentile, run_together
from bench.report import command_line, header, model_versions, parser, publish, verdict

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
QUOTA_US, PERIOD_US = 10_000, 100_000
LIMIT_BYTES = 512 * 1024 * 1024
PROBE_EVERY, PROBE_TIMEOUT = 0.5, 5.0
CLIENT_TIMEOUT = 120.0
IMAGES = ("retina", "ecg")
FORMS = ("diabetes", "heart")
TARGETS = {"boot_s": 5.0, "first_form_s": 1.5, "first_image_s": 4.0,
           "warm_p50_s": {"diabetes": 0.2, "heart": 0.2, "retina": 0.6, "ecg": 1.2},
           "probe_s": 1.0, "answered": 0.9, "peak_mb": 400}
# What gunicorn logs when a worker dies badly.
DEATHS = {"timeout": "WORKER TIMEOUT", "killed": "was sent SIGKILL", "aborted": "SIGABRT",
          "terminate": "terminate called", "boot failure": "Worker failed to boot"}


class CgroupUnavailable(Exception):
    pass


class FreeInstance:
    """A cpu and a memory cgroup shaped like Render's free instance; removed on close()."""

    def __init__(self) -> None:
        name = f"healthoracle-free-{os.getpid()}"
        if os.geteuid() != 0:
            raise CgroupUnavailable("not root: cgroups cannot be created")
        for root, controller in ((CPU_ROOT, "cpu"), (MEMORY_ROOT, "memory")):
            if not (root / "cgroup.procs").exists():
                raise CgroupUnavailable(f"no cgroup v1 {controller} controller mounted at {root}")
        self.cpu = CPU_ROOT / name
        self.memory = MEMORY_ROOT / own_cgroup("memory").lstrip("/") / name
        try:
            self.cpu.mkdir()
            self.memory.mkdir()
            (self.cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.cpu / "cpu.cfs_quota_us").write_text(str(QUOTA_US))
            (self.memory / "memory.limit_in_bytes").write_text(str(LIMIT_BYTES))
            swap = self.memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(LIMIT_BYTES))
        except OSError as exc:
            self.close()
            raise CgroupUnavailable(f"cannot make or limit the cgroups: {exc}") from exc

    def launch_prefix(self) -> list[str]:
        """What runs a command inside both cgroups (the shell joins them, then becomes the command)."""
        joins = f"echo $$ > {self.cpu}/cgroup.procs && echo $$ > {self.memory}/cgroup.procs && exec \"$@\""
        return ["/bin/sh", "-c", joins, "sh"]

    def read(self, name: str) -> int:
        return int((self.memory / name).read_text().split()[0])

    def oom_kills(self) -> int:
        text = (self.memory / "memory.oom_control").read_text()
        match = re.search(r"oom_kill (\d+)", text)
        return int(match.group(1)) if match else 0

    def throttled(self) -> dict[str, int]:
        stat = dict(line.split() for line in (self.cpu / "cpu.stat").read_text().splitlines())
        return {"periods": int(stat.get("nr_periods", 0)), "throttled": int(stat.get("nr_throttled", 0))}

    def reset_peak(self) -> None:
        (self.memory / "memory.max_usage_in_bytes").write_text("0")

    def close(self) -> None:
        for group in (getattr(self, "cpu", None), getattr(self, "memory", None)):
            if group is None or not group.exists():
                continue
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:  # processes still leaving
                    time.sleep(0.1)


def own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise CgroupUnavailable(f"this process is in no {controller} cgroup")


def blueprint_env() -> dict[str, str]:
    """render.yaml's literal environment values (generated ones and secrets are the harness's own)."""
    env, key = {}, None
    for line in (ROOT / "render.yaml").read_text().splitlines():
        if match := re.match(r"\s*- key: (\S+)", line):
            key = match.group(1)
        elif (match := re.match(r"\s*value: (.+)", line)) and key:
            env[key] = match.group(1).strip().strip('"')
            key = None
    env.pop("PYTHON_VERSION", None)
    return env


def free_site(instance: FreeInstance, extra_env: dict[str, str]) -> Site:
    """The harness's site, its gunicorn started inside the free instance's cgroups."""
    return Site(extra_env=extra_env, launch_prefix=instance.launch_prefix(), boot_timeout=120).start()


class Burst:
    """Upload clients, one form client, the prober and the memory sampler, for `seconds`."""

    def __init__(self, site: Site, instance: FreeInstance, uploaders: int, seconds: float):
        self.site, self.instance, self.uploaders, self.seconds = site, instance, uploaders, seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: Counter = Counter()  # (kind, status or error)
        self.round_trips: dict[str, list[float]] = {"image": [], "form": []}
        self.probes: list[float | None] = []
        self.inputs = payloads()

    def call(self, kind: str, model: str) -> tuple[str, float | None]:
        try:
            answer = self.site.send_prediction(model, self.inputs[model], timeout=CLIENT_TIMEOUT)
        except (OSError, http.client.HTTPException) as exc:
            with self.lock:
                self.answers[(kind, type(exc).__name__)] += 1
            return type(exc).__name__, 1.0
        retry = float(answer.headers.get("Retry-After") or 0) if answer.status == 503 else None
        with self.lock:
            self.answers[(kind, str(answer.status))] += 1
            if answer.status == 200:
                self.round_trips[kind].append(answer.seconds)
        return str(answer.status), retry

    def client(self, kind: str, index: int) -> None:
        models = IMAGES if kind == "image" else FORMS
        step = index
        while not self.stop.is_set():
            _, retry = self.call(kind, models[step % len(models)])
            step += 1
            if retry:
                self.stop.wait(retry)

    def prober(self) -> None:
        for probe in health_probes(self.site, every=PROBE_EVERY, timeout=PROBE_TIMEOUT, stop=self.stop):
            self.probes.append(probe.seconds if probe.status == 200 else None)

    def run(self) -> dict:
        instance = self.instance
        instance.reset_peak()
        fails, ooms, cpu = instance.read("memory.failcnt"), instance.oom_kills(), instance.throttled()
        log_start = len(self.site.log_tail(10**9))
        clients = [partial(self.client, "image", i) for i in range(self.uploaders)]
        with PssSampler(self.site, every=0.5) as memory:
            run_together([*clients, partial(self.client, "form", 0), self.prober], self.stop, self.seconds,
                         join_timeout=CLIENT_TIMEOUT + 10)
        log = self.site.log_tail(10**9)[log_start:]
        cpu_after = instance.throttled()
        answered = sum(n for (kind, status), n in self.answers.items() if status.isdigit())
        sent = sum(self.answers.values())
        probes = [p for p in self.probes if p is not None]
        return {
            "uploaders": self.uploaders, "seconds": self.seconds,
            "answers": {f"{kind} {status}": n for (kind, status), n in sorted(self.answers.items())},
            "answered_share": round(answered / sent, 3) if sent else None,
            "five_xx_other_than_503": sum(n for (_, status), n in self.answers.items()
                                          if status.isdigit() and int(status) >= 500 and status != "503"),
            "image_p50_s": round(percentile(self.round_trips["image"], 50), 2) if self.round_trips["image"] else None,
            "image_p95_s": round(percentile(self.round_trips["image"], 95), 2) if self.round_trips["image"] else None,
            "form_p50_s": round(percentile(self.round_trips["form"], 50), 2) if self.round_trips["form"] else None,
            "form_p95_s": round(percentile(self.round_trips["form"], 95), 2) if self.round_trips["form"] else None,
            "probes": len(self.probes), "probes_failed": len(self.probes) - len(probes),
            "probe_max_s": round(max(probes), 3) if probes else None,
            "probe_p95_s": round(percentile(probes, 95), 3) if probes else None,
            "probes_over_1s": sum(1 for p in probes if p > 1.0),
            "cgroup_peak_mb": round(instance.read("memory.max_usage_in_bytes") / 2**20, 1),
            "pss_peak_mb": round(memory.peak_mb, 1),
            "limit_hits": instance.read("memory.failcnt") - fails, "oom_kills": instance.oom_kills() - ooms,
            "throttled_share": round((cpu_after["throttled"] - cpu["throttled"])
                                     / max(1, cpu_after["periods"] - cpu["periods"]), 2),
            "workers_seen": len({pid for sample in memory.samples for pid in sample.workers_mb}),
            "deaths": {name: log.count(text) for name, text in DEATHS.items()},
        }


def first_and_warm(site: Site, warm: int) -> tuple[dict, dict]:
    inputs = payloads()
    # In the order a visitor after a spin-down most likely asks.
    first = {model: round(site.predict_ok(model, inputs[model])[1], 2) for model in MODELS}
    warm_times: dict[str, dict] = {}
    for model in MODELS:
        times = [site.predict_ok(model, inputs[model])[1] for _ in range(warm)]
        warm_times[model] = {"p50_s": round(percentile(times, 50), 2), "p95_s": round(percentile(times, 95), 2)}
    return first, warm_times


def run(burst_seconds: float, long_burst_seconds: float, warm: int) -> dict:
    instance = FreeInstance()
    env = blueprint_env()
    results: dict = {"env": env, "versions": model_versions(MODELS)}
    try:
        site = free_site(instance, env)
        try:
            results["boot_s"] = round(site.started_seconds, 2)
            results["first_s"], results["warm"] = first_and_warm(site, warm)
            results["bursts"] = [Burst(site, instance, n, long_burst_seconds if n == 8 else burst_seconds).run()
                                 for n in (1, 2, 4, 8)]
        finally:
            site.stop()
        site = free_site(instance, {**env, "GUNICORN_MAX_REQUESTS": "25"})
        try:
            site.predict("diabetes", payloads()["diabetes"])
            results["recycled"] = Burst(site, instance, 8, long_burst_seconds).run()
        finally:
            site.stop()
    finally:
        instance.close()
    return results


def render(results: dict, command: str, concurrent_training: bool) -> str:
    t = TARGETS
    lines = [f"{header(command, results['versions'])}: gunicorn inside a cgroup of 0.1 CPU ({QUOTA_US}/{PERIOD_US} "
             f"µs) and 512 MB, render.yaml's environment "
             f"({', '.join(f'{k}={v}' for k, v in results['env'].items())})."]
    if concurrent_training:
        lines.append("**Model training was running on the same machine during this run.**")
    first, warm = results["first_s"], results["warm"]
    lines += ["", f"Boot to the first `/health/` 200: {results['boot_s']} s (target ≤ {t['boot_s']}: "
                  f"{verdict(results['boot_s'] <= t['boot_s'])}). The first answers are asked for at that moment, "
                  "one after another in this order: the first one waits for Django's own start-up too.", "",
              "| model | first answer after boot s | target | warm round trip p50 / p95 s | target p50 |",
              "|---|---|---|---|---|"]
    for model in MODELS:
        target = t["first_form_s"] if model in FORMS else t["first_image_s"]
        lines.append(f"| {model} | {first[model]} | ≤ {target}: {verdict(first[model] <= target)} | "
                     f"{warm[model]['p50_s']} / {warm[model]['p95_s']} | ≤ {t['warm_p50_s'][model]}: "
                     f"{verdict(warm[model]['p50_s'] <= t['warm_p50_s'][model])} |")
    lines += ["", "Bursts: N clients uploading images (retina and ECG in turn, honouring Retry-After) and one "
                  "client sending forms back to back, `/health/` probed every 0.5 s with a 5 s timeout. "
                  "Answered = any HTTP answer (a 503 with Retry-After included).", "",
              "| uploaders | s | answers | answered | image p50 / p95 s | form p50 / p95 s | probes (failed, > 1 s) "
              "| probe max s | cgroup peak MB | PSS peak MB | limit hits / OOM kills | CPU throttled | workers | "
              "timeouts / kills / aborts |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in [*results["bursts"], {**results["recycled"], "label": "8, recycled every 25"}]:
        d = row["deaths"]
        answers = ", ".join(f"{k}: {v}" for k, v in row["answers"].items())
        lines.append(f"| {row.get('label', row['uploaders'])} | {row['seconds']:.0f} | {answers} | "
                     f"{row['answered_share']:.0%} | {row['image_p50_s']} / {row['image_p95_s']} | "
                     f"{row['form_p50_s']} / {row['form_p95_s']} | {row['probes']} ({row['probes_failed']}, "
                     f"{row['probes_over_1s']}) | {row['probe_max_s']} | {row['cgroup_peak_mb']} | "
                     f"{row['pss_peak_mb']} | {row['limit_hits']} / {row['oom_kills']} | {row['throttled_share']:.0%} | "
                     f"{row['workers_seen']} | {d['timeout']} / {d['killed']} / {d['aborted'] + d['terminate']} |")
    eight, recycled = results["bursts"][-1], results["recycled"]

    def burst_ok(row: dict) -> bool:
        return (row["probes_failed"] == 0 and row["probes_over_1s"] == 0 and row["five_xx_other_than_503"] == 0
                and (row["answered_share"] or 0) >= t["answered"] and row["oom_kills"] == 0
                and not any(row["deaths"].values()))

    lines += ["", f"Against the targets: 8 uploads for {eight['seconds']:.0f} s: every probe within 1 s, no 5xx "
                  f"but 503, ≥ 90% answered, no kill: {verdict(burst_ok(eight))}; peak {eight['cgroup_peak_mb']} MB "
                  f"in the cgroup (page cache included), {eight['pss_peak_mb']} MB PSS (target ≤ {t['peak_mb']}: "
                  f"{verdict(max(eight['cgroup_peak_mb'], eight['pss_peak_mb']) <= t['peak_mb'])}); limit hits "
                  f"{eight['limit_hits']} (memory.failcnt counts each time the cgroup reclaimed at its limit); "
                  f"recycled every 25 requests: {verdict(burst_ok(recycled))} "
                  f"({recycled['workers_seen']} workers seen)."]
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--burst-seconds", type=float, default=30)
    options.add_argument("--long-burst-seconds", type=float, default=60, help="the 8-upload bursts")
    options.add_argument("--warm", type=int, default=8, help="warm requests per model")
    args = options.parse_args()
    training = subprocess.run(["pgrep", "-f", "train_models"], capture_output=True).returncode == 0
    try:
        results = run(args.burst_seconds, args.long_burst_seconds, args.warm)
    except CgroupUnavailable as exc:
        print(f"cannot simulate the free instance: {exc}", file=sys.stderr)
        sys.exit(2)
    publish(render(results, command_line(options, args), training), "free-instance", args.write)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
