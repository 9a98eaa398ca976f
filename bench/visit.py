"""A clinician's visit after a spin-down, on the simulated free instance: what each click waits.

    .venv/bin/python -m bench.visit [--pause 3] [--write]

The server as bench/free_instance.py runs it (gunicorn_config.py, the runtime environment
.venv, render.yaml's environment, a cgroup v1 of 0.1 CPU and 512 MB), started cold. The
first request, the log-in page, is sent the moment gunicorn is started and held until the
port answers (a refused connection is tried again at once, with no timeout shorter than a
boot), as Render holds the request that wakes a spun-down instance: its wait counts from the
process start. Then a clinician, after --pause seconds of reading and typing before each
click: logs in (the page's form with its CSRF token; the redirect to the dashboard followed,
as a browser follows it), opens the diabetes page and submits it, opens the retina page and
submits a real fundus photo, opens the ECG page and submits a printout from the ECG model's
own machine (the photos bench/harness.py's payloads send), then submits both photos again,
warm. Every answer goes through the page's own form, posted as a browser posts it, not the API.

A step's wait runs from sending its request to reading the last byte of its answer,
redirects included. A step counts only if it lands on its page and the page shows what it
should (the result's probability or decision, the form's fields, the dashboard); otherwise it
is reported as failed, with its statuses, whatever its wait. Also measured: the server's CPU
seconds (master and worker, from /proc: cgroup v1's cpu.stat counts only throttling, and
cpuacct is a hierarchy the free instance does not join) in each wait and over the visit, and
the peak memory as free_instance measures it. --write records the table in
docs/benchmarks.md ("A visit on the free instance").
"""
from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

from bench.free_instance import LIMIT_BYTES, PERIOD_US, QUOTA_US, CgroupUnavailable, FreeInstance, blueprint_env
from bench.harness import DIABETES, MODELS, Answer, PssSampler, Site, multipart, payloads
from bench.report import command_line, header, model_versions, parser, publish, verdict

PAUSE_SECONDS = 3.0  # reading a page and typing the next form, before each click after the first
WAKE_SECONDS = 120.0  # how long the waking request is held: longer than any boot, so never cut short
REFUSED_RETRY_SECONDS = 0.01  # no port yet: the waking request is sent again after this
CLIENT_TIMEOUT = 120.0
MAX_REDIRECTS = 5
LOGIN_PATH = "/accounts/login/"
CLINICIAN = "dr_visit"
# Issue 31's targets: the first page counted from the process start, every later click from
# sending it, logging in included; warm image answers tighter still.
FIRST_PAGE_S, STEP_S, WARM_RETINA_S, WARM_ECG_S = 3.5, 1.0, 0.35, 0.8
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
# What a page shows only when the step did what it should (templates/).
LOGIN_FORM, DASHBOARD, FORM_RESULT, IMAGE_RESULT = (b'id="id_password"', b'class="models"',
                                                    b'data-testid="probability"', b'data-testid="decision"')


class Step(NamedTuple):
    name: str
    path: str  # where the click sends its request
    lands: str  # the page its answer must end on, redirects followed
    shows: bytes  # markup that page has when the step did what it should
    target_s: float
    form: Callable[[str], tuple[bytes, str]] | None = None  # a POST's body and type from the CSRF token; None: GET


class Outcome(NamedTuple):
    step: str
    target_s: float
    seconds: float  # the wait; the first step's from the process start
    statuses: tuple[int, ...]  # every answer's, redirects first
    landed: str  # the page the last answer was
    shown: bool
    error: str | None  # the exception's name where no answer came
    cpu_s: float | None = None  # the server's CPU seconds during the wait


def login_form(password: str, token: str) -> tuple[bytes, str]:
    fields = {"csrfmiddlewaretoken": token, "username": CLINICIAN, "password": password, "next": ""}
    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


def page_form(token: str, *, file_field: str, upload: tuple[str, bytes] = ("", b""),
              fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A prediction page's form as the browser sends it: multipart, no case reference."""
    return multipart(file_field, *upload, fields={"csrfmiddlewaretoken": token, "case_reference": "", **(fields or {})})


def page(model: str) -> str:
    return f"/predict/{model}/"


def log_in_steps(password: str) -> list[Step]:
    """Opening the log-in page, then logging in with its form."""
    return [
        Step("log-in page, sent as the process starts", LOGIN_PATH, LOGIN_PATH, LOGIN_FORM, FIRST_PAGE_S),
        Step("log in (and the dashboard)", LOGIN_PATH, "/", DASHBOARD, STEP_S, partial(login_form, password)),
    ]


def image_answer(name: str, model: str, photo: tuple[str, bytes], target_s: float = STEP_S) -> Step:
    """A photo sent through its model's page form, answered by the result page."""
    return Step(name, page(model), page(model), IMAGE_RESULT, target_s,
                partial(page_form, file_field="image", upload=photo))


def steps(password: str) -> list[Step]:
    """The visit, click by click."""
    photos = payloads()
    diabetes = {name: "" if value is None else str(value) for name, value in DIABETES.items()}  # blank: unknown
    return [
        *log_in_steps(password),
        Step("diabetes page", page("diabetes"), page("diabetes"), b'name="glucose"', STEP_S),
        Step("diabetes answered", page("diabetes"), page("diabetes"), FORM_RESULT, STEP_S,
             partial(page_form, file_field="retina_image", fields=diabetes)),
        Step("retina page", page("retina"), page("retina"), b'name="image"', STEP_S),
        image_answer("fundus photo answered", "retina", photos["retina"]),
        Step("ECG page", page("ecg"), page("ecg"), b'name="image"', STEP_S),
        image_answer("ECG printout answered", "ecg", photos["ecg"]),
        image_answer("fundus photo again, warm", "retina", photos["retina"], WARM_RETINA_S),
        image_answer("ECG printout again, warm", "ecg", photos["ecg"], WARM_ECG_S),
    ]


class Visitor:
    """The browser's side: its cookies, and the CSRF token of the last page it was shown."""

    def __init__(self, site: Site):
        self.site, self.cookies, self.token = site, {}, ""

    def send(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if content_type:
            headers["Content-Type"] = content_type
        answer = self.site.exchange(method, path, body, headers, timeout=CLIENT_TIMEOUT)
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        if match := CSRF.search(answer.data):
            self.token = match.group(1).decode()
        return answer


def take(visitor: Visitor, step: Step, since: float | None = None, hold_until: float | None = None) -> Outcome:
    """One click, timed from sending it (or from `since`); with `hold_until`, a refused connection
    is sent again until then (or until gunicorn has exited), as Render holds the request that
    wakes the instance."""
    body, content_type = step.form(visitor.token) if step.form else (None, None)
    started = time.perf_counter() if since is None else since
    method, path, landed = ("POST" if step.form else "GET"), step.path, step.path
    statuses: list[int] = []
    answer, error = None, None
    try:
        while True:
            try:
                answer = visitor.send(method, path, body, content_type)
            except ConnectionRefusedError:
                if hold_until is None or time.perf_counter() > hold_until or visitor.site.process.poll() is not None:
                    raise
                time.sleep(REFUSED_RETRY_SECONDS)
                continue
            statuses.append(answer.status)
            if answer.status not in (301, 302, 303) or len(statuses) > MAX_REDIRECTS:
                break
            location = urlsplit(answer.headers["Location"])
            method, landed, body, content_type = "GET", location.path, None, None
            path = f"{location.path}?{location.query}" if location.query else location.path
    except (OSError, http.client.HTTPException) as exc:
        answer, error = None, type(exc).__name__
    seconds = time.perf_counter() - started
    shown = answer is not None and answer.status == 200 and landed == step.lands and step.shows in answer.data
    return Outcome(step.name, step.target_s, round(seconds, 3), tuple(statuses), landed, shown, error)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process, all its threads, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(site: Site) -> float:
    """The gunicorn master's and workers' CPU so far (a worker that has exited is no longer counted)."""
    total = 0.0
    for pid in [site.process.pid, *site.workers()]:
        try:
            total += process_cpu_seconds(pid)
        except OSError:  # exited between being listed and being read
            pass
    return total


def visit(site: Site, password: str, launched_at: float, pause: float) -> list[Outcome]:
    """The steps, the first sent at once and timed from `launched_at` (when gunicorn was
    started), each later one after `pause` seconds."""
    visitor = Visitor(site)
    first, *later = steps(password)

    def click(step: Step, **hold: float) -> Outcome:
        cpu_before = server_cpu_seconds(site)
        outcome = take(visitor, step, **hold)
        return outcome._replace(cpu_s=round(server_cpu_seconds(site) - cpu_before, 2))

    outcomes = [click(first, since=launched_at, hold_until=launched_at + WAKE_SECONDS)]
    for step in later:
        time.sleep(pause)
        outcomes.append(click(step))
    return outcomes


def add_clinician(site: Site) -> str:
    """The site prepared as Render's build prepares it, and a clinician (the site's own password
    hashing); the password the visit types."""
    site.prepare()
    return create_clinician(site)


def create_clinician(site: Site) -> str:
    """A clinician in a prepared site's database; their password."""
    password = secrets.token_urlsafe(12)
    site.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                               f"get_user_model().objects.create_user({CLINICIAN!r}, password={password!r})")
    return password


def logged_in(site: Site) -> Visitor:
    """A browser logged in through the log-in page's form, as a new clinician of a running site."""
    visitor = Visitor(site)
    for step in log_in_steps(create_clinician(site)):
        if not (outcome := take(visitor, step)).shown:
            raise RuntimeError(f"{step.name}: {failure(outcome._asdict())}")
    return visitor


def run(pause: float) -> dict:
    instance = FreeInstance()
    env = blueprint_env()
    results: dict = {"env": env, "versions": model_versions(MODELS), "pause_s": pause,
                     "load_average": round(os.getloadavg()[0], 1)}
    site = Site(extra_env=env, launch_prefix=instance.launch_prefix())
    try:
        password = add_clinician(site)
        launched_at = site.launch()
        with PssSampler(site, every=0.5) as memory:
            outcomes = visit(site, password, launched_at, pause)
        results.update({
            "steps": [outcome._asdict() for outcome in outcomes],
            "server_cpu_s": round(server_cpu_seconds(site), 2),
            "cgroup_peak_mb": round(instance.read("memory.max_usage_in_bytes") / 2**20, 1),
            "pss_peak_mb": round(memory.peak_mb, 1),
            "oom_kills": instance.oom_kills(),
            "workers_seen": len({pid for sample in memory.samples for pid in sample.workers_mb}),
        })
    finally:
        site.stop()
        instance.close()
    return results


def failure(row: dict) -> str | None:
    """Why a step did not get its page, in words; None when it did."""
    if row["error"]:
        return f"no answer ({row['error']})"
    if not row["shown"]:
        return f"HTTP {' → '.join(map(str, row['statuses']))} on {row['landed']}, not the page expected"
    return None


def render(results: dict, command: str) -> str:
    rows = results["steps"]
    lines = [f"{header(command, results['versions'])}: gunicorn started cold inside a cgroup of 0.1 CPU "
             f"({QUOTA_US}/{PERIOD_US} µs) and {LIMIT_BYTES // 2**20} MB with render.yaml's environment, as in "
             f"\"Free instance\"; {results['pause_s']:g} s of reading and typing before each click after the first; "
             f"load average {results['load_average']} on the machine as it started.", "",
             "| step | HTTP | page shown | wait s | target s | verdict | server CPU s in the wait |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        why = failure(row)
        lines.append(f"| {row['step']} | {' → '.join(map(str, row['statuses'])) or '—'} | "
                     f"{'yes' if row['shown'] else 'no'} | {row['seconds']:.2f} | ≤ {row['target_s']} | "
                     f"{f'failed: {why}' if why else verdict(row['seconds'] <= row['target_s'])} | {row['cpu_s']} |")
    failed = [row for row in rows if failure(row)]
    met = [row for row in rows if not failure(row) and row["seconds"] <= row["target_s"]]
    in_waits = sum(row["cpu_s"] or 0 for row in rows)
    sentences = [
        "The first wait runs from the process start (gunicorn started, the request sent at once and held until the "
        "port answered); every other from sending the click to its last byte, a redirect followed included.",
        f"Against the targets: {len(met)} of {len(rows)} steps met; {len(failed)} failed to get their page.",
        f"Server CPU (master and worker) over the visit: {results['server_cpu_s']} s, {in_waits:.2f} s of it in "
        "the waits and the rest while the visitor read.",
        f"Peak memory {results['cgroup_peak_mb']} MB in the cgroup (page cache included), {results['pss_peak_mb']} "
        f"MB PSS; OOM kills {results['oom_kills']}; workers seen {results['workers_seen']}.",
    ]
    return "\n".join([*lines, "", " ".join(sentences)])


def main() -> None:
    # A plain kill unwinds like Ctrl-C, so the server and the cgroups are removed.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    options = parser(__doc__)
    options.add_argument("--pause", type=float, default=PAUSE_SECONDS,
                         help="seconds of reading and typing before each click after the first")
    args = options.parse_args()
    try:
        results = run(args.pause)
    except CgroupUnavailable as exc:
        print(f"cannot simulate the free instance: {exc}", file=sys.stderr)
        sys.exit(2)
    publish(render(results, command_line(options, args)), "visit", args.write)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
