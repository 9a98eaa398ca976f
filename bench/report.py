"""What a benchmark writes: its section of docs/benchmarks.md, opened by one header that
says when, on what machine, on which model versions and with what command the figures
were measured, so that anyone can re-run the command and compare.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import ARTIFACTS, ROOT

DOCUMENT = ROOT / "docs" / "benchmarks.md"
# Options that say where figures go, not how they were measured.
UNSHOWN = {"write", "plot"}


def parser(doc: str, write_help: str = "record the figures in docs/benchmarks.md") -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help, and --write."""
    result = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--write", action="store_true", help=write_help)
    return result


def command_line(options: argparse.ArgumentParser, args: argparse.Namespace, prefix: str = "") -> str:
    """The command that re-runs this benchmark as it ran: this interpreter (its venv, relative to
    the repository), `-m bench.<name>`, and the options given other than their defaults. A
    database URL shows its scheme only: the rest may hold a password."""
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    words = [f"{prefix}{python}", "-m", sys.modules["__main__"].__spec__.name]
    for name, value in vars(args).items():
        if name in UNSHOWN or value is None or value == options.get_default(name):
            continue
        option = "--" + name.replace("_", "-")
        if value is True:
            words.append(option)
        elif isinstance(value, list):
            words += [option, *map(str, value)]
        elif isinstance(value, float):
            words += [option, f"{value:g}"]
        elif name == "database_url":
            words += [option, f"{urlsplit(value).scheme}://…"]
        else:
            words += [option, str(value)]
    return " ".join(words)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def model_versions(models: Iterable[str], artifacts: Path = ARTIFACTS) -> dict[str, str]:
    return {model: str(json.loads((artifacts / model / "card.json").read_text()).get("version"))
            for model in models}


def header(command: str, versions: dict[str, str] | None = None, verb: str = "Measured") -> str:
    """The opening of a section, for the benchmark to continue: "Measured <UTC time> on
    <machine>, with `<command>`[, models <name> <version>, …]"."""
    text = f"{verb} {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, with `{command}`"
    if versions:
        text += ", models " + ", ".join(f"{model} {version}" for model, version in versions.items())
    return text


def verdict(ok: bool) -> str:
    """How a figure stands against its target, in the words every section uses."""
    return "met" if ok else "missed"


def write_section(name: str, text: str) -> Path:
    """Replace the section between `<!-- name:begin -->` and `<!-- name:end -->` (or add it at
    the end), leaving every other section as it stands."""
    DOCUMENT.parent.mkdir(exist_ok=True)
    document = DOCUMENT.read_text() if DOCUMENT.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in document:
        document = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, document, flags=re.S)
    else:
        document = document.rstrip() + f"\n\n{block}\n"
    DOCUMENT.write_text(document)
    return DOCUMENT


def publish(text: str, section: str, write: bool) -> None:
    """Print the figures and, with --write, record them as their section of docs/benchmarks.md."""
    print(text)
    if write:
        print(f"written to {write_section(section, text)}")
