"""The artifact contract: what training writes and the registry serves.

`<artifacts>/<name>/` holds the model file, `card.json` (labels, input spec, metrics,
provenance) and `manifest.json` (sha256 of every file the registry loads). Training
builds a `Card` and writes the whole directory through `publish`, and whatever changes a
card later (a benchmark, a decision rule chosen again) goes through `Card.publish`, so a
reader sees the old artifact or the new one, never half of each; the registry calls `open_artifact`,
which refuses any directory whose files do not match their manifest.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

CARD = "card.json"
MANIFEST = "manifest.json"
CONTRACT_VERSION = 1

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


class ArtifactError(Exception):
    """An artifact directory the registry must not load, with a reason an operator can act on."""


@dataclass(frozen=True)
class Card:
    """`card.json`: what a model is, what it takes, how well it did and where it came from.

    Every writer makes one with `Card.new`, which fixes the keys every card has and their
    order; what a writer adds (metrics, quantization, calibration, decision, data,
    training, limitations…) goes in as sections, in the order given. Only the keys the
    registry serves by (REQUIRED) are checked: a card page shows whatever else it finds.
    """

    fields: dict[str, Any]

    REQUIRED = ("kind", "version", "labels", "input", "model_file")

    def __post_init__(self) -> None:
        for key in self.REQUIRED:
            if key not in self.fields:
                raise ArtifactError(f"{CARD} has no {key!r}")

    @classmethod
    def new(cls, *, name: str, version: str, kind: str, task: str, model_file: str, labels: Sequence[str],
            input_spec: Mapping[str, Any], sections: Mapping[str, Any], plots: Mapping[str, str],
            library_versions: Mapping[str, str]) -> Card:
        """A card as training and import write it, stamped now; numbers from numpy become plain
        JSON here, so the card returned is the card a reader will read."""
        fields = {"name": name, "version": version, "kind": kind, "task": task, "model_file": model_file,
                  "labels": list(labels), "input": dict(input_spec), **sections, "plots": dict(plots),
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "library_versions": dict(library_versions)}
        return cls(json.loads(_to_json(fields)))

    @classmethod
    def read(cls, directory: Path) -> Card:
        try:
            fields = json.loads((directory / CARD).read_text())
        except ValueError as exc:
            raise ArtifactError(f"{CARD} is not valid JSON: {exc}") from exc
        if not isinstance(fields, dict):
            raise ArtifactError(f"{CARD} is not a JSON object")
        return cls(fields)

    @property
    def version(self) -> str:
        return str(self.fields["version"])

    @property
    def model_file(self) -> str:
        return self.fields["model_file"]

    @property
    def files(self) -> list[str]:
        """What the manifest covers: the card, the model file and the plots it names."""
        return [CARD, self.model_file, *self.fields.get("plots", {}).values()]

    def write(self, directory: Path) -> None:
        """card.json and the manifest over the files the card names, which must be there already."""
        (directory / CARD).write_text(_to_json(self.fields) + "\n")
        write_manifest(directory, self.files)

    def publish(self, directory: Path) -> None:
        """This card in place of the one in `directory`, its other files kept, through `publish`:
        how a card is changed after training (a benchmark's figures, a decision rule chosen again),
        so a reader never finds a card its manifest does not match."""
        with publish(directory) as staging:
            copy_artifact(directory, staging)
            self.write(staging)


def _to_json(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, indent=2, default=_plain)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (training's figures are full of them) as lists and numbers;
    duck-typed, so the web process's half of the contract does not import numpy for it."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a card")


@contextmanager
def publish(directory: Path) -> Iterator[Path]:
    """An empty staging directory beside `directory` to build an artifact in.

    When the block ends, its files are flushed to disk and it takes `directory`'s place by
    rename; if the block raises, it is removed and `directory` keeps what it had. The one
    way an artifact is written, so the registry, which may be serving `directory`, never
    reads a half-written one (between the two renames, for an instant, it finds none).
    """
    staging = directory.with_name(directory.name + ".tmp")
    retired = directory.with_name(directory.name + ".old")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        for path in staging.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    _fsync_directory(directory.parent)
    shutil.rmtree(retired, ignore_errors=True)


def copy_artifact(directory: Path, staging: Path) -> None:
    """An artifact's files into the staging directory that will replace it, to change some of them."""
    for path in directory.rglob("*"):
        if path.is_file():
            (staging / path.relative_to(directory)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / path.relative_to(directory))


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@dataclass(frozen=True)
class Artifact:
    """A verified artifact directory as the registry serves it; `card` is card.json as read."""

    name: str
    directory: Path
    card: dict[str, Any]
    files: tuple[str, ...] = ()  # what its manifest covers, each checked against its hash

    @property
    def kind(self) -> str:
        return self.card["kind"]

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def input_spec(self) -> dict[str, Any]:
        return dict(self.card["input"])

    @property
    def model_path(self) -> Path:
        return self.directory / self.card["model_file"]


def sha256_file(path: Path) -> str:
    """Hash a file, remembering the answer while its size and mtime stay the same.

    /ready/ verifies every artifact on each call; re-hashing 30 MB of weights per probe
    would cost more than the probe is worth, and a replaced file changes its mtime.
    """
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_cache[key] = value
    return value


def write_manifest(directory: Path, files: Sequence[str]) -> dict[str, Any]:
    """The sha256 of each file, which `open_artifact` checks before anything is loaded. `Card.write`
    calls it; so do tests that forge an artifact in place (a corrupt graph, a card changed under a server)."""
    manifest = {
        "contract_version": CONTRACT_VERSION,
        "files": {name: sha256_file(directory / name) for name in sorted(files)},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def open_artifact(name: str, directory: Path) -> Artifact:
    """Verify an artifact directory against its manifest and read its card."""
    if not directory.is_dir():
        raise ArtifactError(f"no artifact directory {directory.name}/ in the artifacts folder")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{MANIFEST} is missing from {directory.name}/")
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory.name}/{MANIFEST} is not a valid manifest: {exc}") from exc
    if CARD not in files:
        raise ArtifactError(f"{directory.name}/{MANIFEST} does not cover {CARD}")
    for filename, expected in files.items():
        path = directory / filename
        if not path.is_file():
            raise ArtifactError(f"{filename} is listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{filename} does not match its manifest checksum (expected {expected[:12]}…, "
                f"found {actual[:12]}…); the file was changed or corrupted")
    card = Card.read(directory)
    if card.model_file not in files:
        raise ArtifactError(f"the model file {card.model_file} is not covered by the manifest")
    return Artifact(name=name, directory=directory, card=card.fields, files=tuple(files))
