"""What one log-in's password check costs, for each hasher the site knows.

    .venv/bin/python -m bench.password_check [--checks 10] [--write]

Each hasher of settings.PASSWORD_HASHERS (the one new passwords get first) checks a right
password --checks times in a fresh process of the runtime environment (.venv) on one full
core: CPU seconds per check (median), the same at the free instance's tenth of a CPU, and the
memory the process's peak resident set grew by during the checks (what a log-in costs
against the 512 MB). bench/visit.py measures a whole log-in on the simulated free instance.
"""
from __future__ import annotations

import json
import subprocess

from bench.harness import ROOT, RUNTIME_PYTHON
from bench.report import command_line, header, parser, publish

# Runs in the runtime environment; prints one JSON line.
PROBE = r"""
import json, resource, statistics, sys, time
import django
django.setup()
from django.utils.module_loading import import_string
hasher = import_string(sys.argv[1])()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
encoded = hasher.encode("correct horse battery staple", hasher.salt())
times = []
for _ in range(int(sys.argv[2])):
    started = time.process_time()
    assert hasher.verify("correct horse battery staple", encoded)
    times.append(time.process_time() - started)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": statistics.median(times), "grown_kb": grown, "stored": encoded.rsplit("$", 2)[0]}))
"""


# The runtime environment's settings, for the probes' fresh processes.
ENV = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "password-check-" + "x" * 40, "HTTPS_ONLY": "0",
       "DJANGO_SETTINGS_MODULE": "HealthOracle.settings"}


def measure(dotted: str, checks: int) -> dict:
    result = subprocess.run(["taskset", "-c", "0", str(RUNTIME_PYTHON), "-c", PROBE, dotted, str(checks)], cwd=ROOT,
                            env=ENV, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def hashers() -> list[str]:
    """settings.PASSWORD_HASHERS as the runtime reads them, the one new passwords get first."""
    code = "import django; django.setup(); from django.conf import settings; print('\\n'.join(settings.PASSWORD_HASHERS))"
    return subprocess.run([str(RUNTIME_PYTHON), "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          check=True).stdout.split()


def render(rows: dict[str, dict], checks: int, command: str) -> str:
    lines = [f"{header(command)}.", "",
             f"One right password checked {checks} times per hasher in a fresh process on one full core (median); "
             "the first hasher is the one new and re-hashed passwords get:", "",
             "| hasher | stored as | CPU per check, ms | at 0.1 CPU, s | peak memory grown by, MB |",
             "|---|---|---|---|---|"]
    for dotted, row in rows.items():
        lines.append(f"| `{dotted.rsplit('.', 1)[-1]}` | `{row['stored']}$…` | {row['seconds'] * 1000:.1f} | "
                     f"{row['seconds'] * 10:.2f} | {row['grown_kb'] / 1024:.1f} |")
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--checks", type=int, default=10)
    args = options.parse_args()
    rows = {dotted: measure(dotted, args.checks) for dotted in hashers()}
    publish(render(rows, args.checks, command_line(options, args)), "password-check", args.write)


if __name__ == "__main__":
    main()
