"""An image model whose graph runs on an Open Inference Protocol (KServe V2) server: Triton,
MLServer, KServe. The web process keeps everything up to the tensor (decoding, the gates, the
one shared transform) and sends the tensor alone; the server runs the graph the card names and
answers its three outputs, which become the same ImageOutput as onnx_image's (runtimes/images.py).

Loading checks the server serves the model file this site holds: the card's sha256 (the
manifest's hash of the model file) must be among the versions in the server's model metadata
(MLServer: model-settings.json `versions`), or, for Triton, whose versions are numbers, the
`sha256` parameter of its model configuration. `manage.py write_inference_repository` writes both.

Tensors travel as JSON: MLServer 1.7's REST API has no binary tensor extension. orjson encodes
them (the stdlib's json spends about 130 ms of CPU on a fundus tensor, orjson about 7 ms; the
float32 values round-trip exactly either way). The HTTP is the stdlib's: one short request per
image needs no pool.
"""
from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from predictors.serving.artifacts import MANIFEST, Artifact

from . import InferenceEndpoint, RuntimeOptions, RuntimeUnavailable
from .images import OUTPUTS, ImageOutput, card_temperature, check_graph, image_output

# An answer is three small tensors (a few kilobytes); anything this big is not one.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class RemoteImage:
    size_bytes = 0  # the graph lives on the server

    def __init__(self, endpoint: InferenceEndpoint, name: str, input_name: str, sha256: str, temperature: float):
        self.endpoint = endpoint
        self._name = name
        self._input = input_name
        self._sha256 = sha256
        self._temperature = temperature

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "RemoteImage":
        endpoint = options.endpoints[artifact.name]
        sha256 = model_sha256(artifact)
        metadata = call(endpoint, "GET", f"/v2/models/{artifact.name}")
        served = served_sha256(endpoint, artifact.name, metadata)
        if sha256 not in served:
            raise RuntimeUnavailable(
                f"the model server serves {artifact.name} version(s) "
                f"{', '.join(v[:12] for v in served) or 'without a sha256'}, not this site's {artifact.version} "
                f"(model file sha256 {sha256[:12]}…); deploy what `manage.py write_inference_repository` writes "
                f"from these artifacts")
        try:
            inputs, outputs = metadata["inputs"], metadata["outputs"]
            check_graph(artifact, inputs[0]["shape"], {output["name"]: output["shape"] for output in outputs})
            input_name = inputs[0]["name"]
        except (KeyError, IndexError, TypeError) as exc:
            raise RuntimeUnavailable(f"the model server's metadata for {artifact.name} does not describe its "
                                     f"inputs and outputs ({type(exc).__name__}: {exc})") from None
        return cls(endpoint, artifact.name, input_name, sha256, card_temperature(artifact))

    def predict(self, features: np.ndarray) -> ImageOutput:
        """Calibrated probabilities and the activation map for one preprocessed image (1, 3, H, W)."""
        tensor = np.ascontiguousarray(features, dtype=np.float32)
        body = orjson.dumps({
            "inputs": [{"name": self._input, "shape": list(tensor.shape), "datatype": "FP32", "data": tensor}],
            "outputs": [{"name": name} for name in OUTPUTS],
        }, option=orjson.OPT_SERIALIZE_NUMPY)
        answer = call(self.endpoint, "POST", f"/v2/models/{self._name}/infer", body)
        version = str(answer.get("model_version") or "")
        if len(version) == 64 and version != self._sha256:  # swapped on the server since loading
            raise RuntimeUnavailable(f"the model server now serves {self._name} version {version[:12]}…, "
                                     f"not this site's (model file sha256 {self._sha256[:12]}…)")
        try:
            tensors = {output["name"]: np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
                       for output in answer["outputs"]}
            logits, cam, distance = (tensors[name] for name in OUTPUTS)
            # MLServer's NumPy codec answers a (1,) tensor as (1, 1): one number either way.
            if logits.ndim != 2 or cam.ndim != 3 or distance.size != 1 or not np.isfinite(logits).all():
                raise ValueError(f"shapes {logits.shape}, {cam.shape}, {distance.shape}")
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeUnavailable(f"the model server's answer for {self._name} is malformed "
                                     f"({type(exc).__name__}: {exc})") from None
        return image_output(logits, cam, distance.reshape(1), self._temperature)


def model_sha256(artifact: Artifact) -> str:
    """The model file's sha256 as the manifest records it (open_artifact has verified it)."""
    return json.loads((artifact.directory / MANIFEST).read_text())["files"][artifact.card["model_file"]]


def served_sha256(endpoint: InferenceEndpoint, name: str, metadata: dict[str, Any]) -> list[str]:
    """The model file hashes the server says it serves: its metadata's versions, else (Triton)
    the `sha256` parameter of its model configuration."""
    versions = [str(v) for v in metadata.get("versions") or []]
    if any(len(v) == 64 for v in versions):
        return versions
    try:
        config = call(endpoint, "GET", f"/v2/models/{name}/config")
        return [str(config["parameters"]["sha256"]["string_value"])]
    except (RuntimeUnavailable, KeyError, TypeError):
        return versions


def ready(endpoint: InferenceEndpoint, name: str, timeout: float) -> str:
    """The server's readiness for one model, "ok" or why not, within `timeout` seconds (the probe's)."""
    quick = InferenceEndpoint(endpoint.url, min(timeout, endpoint.timeout), endpoint.token)
    try:
        call(quick, "GET", f"/v2/models/{name}/ready", expect_json=False)
    except RuntimeUnavailable as exc:
        return str(exc)
    return "ok"


def call(endpoint: InferenceEndpoint, method: str, path: str, body: bytes | None = None,
         expect_json: bool = True) -> Any:
    """One request to the model server; anything but a JSON 200 in time is RuntimeUnavailable.

    The timeout bounds the connection and each read, so a server that is down, stalled or
    slow costs a worker at most that long per read, never a hang."""
    parts = urlsplit(endpoint.url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=endpoint.timeout)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    where = "the model server"  # its address is the operator's (/status/), not the API's
    try:
        connection.request(method, parts.path.rstrip("/") + path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read(MAX_ANSWER_BYTES + 1)
    except TimeoutError:
        raise RuntimeUnavailable(f"{where} did not answer within {endpoint.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RuntimeUnavailable(f"{where} cannot be reached ({type(exc).__name__}: {exc})") from None
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeUnavailable(f"{where} answered {response.status} to {method} {path}: "
                                 f"{content[:200].decode('utf-8', 'replace')}")
    if len(content) > MAX_ANSWER_BYTES:
        raise RuntimeUnavailable(f"{where} answered more than {MAX_ANSWER_BYTES // 1024 // 1024} MB to {path}")
    if not expect_json:
        return None
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise RuntimeUnavailable(f"{where} answered {path} with something other than JSON ({exc})") from None
    if not isinstance(answer, dict):
        raise RuntimeUnavailable(f"{where} answered {path} with JSON that is not an object")
    return answer
