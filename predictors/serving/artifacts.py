"""The artifact contract: what training writes and the registry serves.

`<artifacts>/<name>/` holds the model file, `card.json` (labels, input spec, metrics,
provenance) and `manifest.json` (sha256 of every file the registry loads). Training
writes manifests with `write_manifest`; the registry calls `open_artifact`, which
refuses any directory whose files do not match their manifest.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD = "card.json"
MANIFEST = "manifest.json"
CONTRACT_VERSION = 1

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


class ArtifactError(Exception):
    """An artifact directory the registry must not load, with a reason an operator can act on."""


@dataclass(frozen=True)
class Artifact:
    name: str
    directory: Path
    card: dict[str, Any]

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


def write_manifest(directory: Path, files: list[str]) -> dict[str, Any]:
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
    try:
        card = json.loads((directory / CARD).read_text())
    except ValueError as exc:
        raise ArtifactError(f"{CARD} is not valid JSON: {exc}") from exc
    for key in ("kind", "version", "labels", "input", "model_file"):
        if key not in card:
            raise ArtifactError(f"{CARD} has no {key!r}")
    if card["model_file"] not in files:
        raise ArtifactError(f"the model file {card['model_file']} is not covered by the manifest")
    return Artifact(name=name, directory=directory, card=card)
