"""python manage.py write_inference_repository OUT: what a deployer hands an Open Inference Protocol server.

From the verified image artifacts it writes
  OUT/triton/<model>/config.pbtxt and OUT/triton/<model>/1/model.onnx   (Triton's model repository),
  OUT/mlserver/<model>/model-settings.json and model.onnx, and OUT/mlserver/healthoracle_onnx.py
                                                                       (MLServer, with its ONNX runtime),
  OUT/kserve/inferenceservice.yaml                                     (KServe, serving the Triton repository).
Each model carries the sha256 of its model file (the manifest's), which the site checks against
the server's model metadata before it sends a single image (predictors/serving/runtimes/oip_image.py).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from predictors.catalogue import IMAGE
from predictors.serving.artifacts import ArtifactError, open_artifact
from predictors.serving.runtimes.oip_image import model_sha256

ENGINES = Path(__file__).resolve().parents[2] / "serving" / "engines"
MLSERVER_RUNTIME = "healthoracle_onnx"

KSERVE = """\
# A KServe InferenceService serving HealthOracle's image models with Triton (KServe's runtime for
# ONNX), over the Open Inference Protocol. Copy ../triton/ to storage KServe can read and set
# storageUri to it; then point the site at the service:
#   INFERENCE_URL=http://healthoracle-images.<namespace>.svc.cluster.local  (or its external URL)
# Written by `manage.py write_inference_repository`; models: {models}.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: healthoracle-images
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat:
        name: onnx
      protocolVersion: v2
      runtime: kserve-tritonserver
      storageUri: gs://YOUR-BUCKET/healthoracle/triton
      resources:
        requests:
          cpu: "1"
          memory: 1Gi
        limits:
          cpu: "1"
          memory: 1Gi
"""


class Command(BaseCommand):
    help = ("Write the Triton model repository, MLServer model settings and a KServe InferenceService "
            "for the image models, from the verified artifacts.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", type=Path, help="directory to write (created; files in it are replaced)")
        parser.add_argument("--models", default=",".join(IMAGE),
                            help=f"comma-separated image models (default: {','.join(IMAGE)})")

    def handle(self, *args, **options) -> None:
        out: Path = options["out"]
        names = [n.strip() for n in options["models"].split(",") if n.strip()]
        if unknown := sorted(set(names) - set(IMAGE)):
            raise CommandError(f"not image models: {', '.join(unknown)} (image models: {', '.join(IMAGE)})")
        for name in names:
            try:
                artifact = open_artifact(name, Path(settings.MODEL_ARTIFACTS_DIR) / name)
            except ArtifactError as exc:
                raise CommandError(f"{name}: {exc}") from exc
            sha256 = model_sha256(artifact)
            graph = _graph(artifact.model_path)
            _write_triton(out / "triton" / name, artifact.model_path, name, graph, sha256)
            _write_mlserver(out / "mlserver" / name, artifact.model_path, name, graph, sha256)
            self.stdout.write(f"{name}: {artifact.version}, model file sha256 {sha256}")
        shutil.copyfile(ENGINES / f"{MLSERVER_RUNTIME}.py", out / "mlserver" / f"{MLSERVER_RUNTIME}.py")
        (out / "kserve").mkdir(parents=True, exist_ok=True)
        (out / "kserve" / "inferenceservice.yaml").write_text(KSERVE.format(models=", ".join(names)))
        self.stdout.write(f"wrote {out}/triton, {out}/mlserver and {out}/kserve/inferenceservice.yaml")


def _graph(path: Path) -> dict[str, list[tuple[str, list[int]]]]:
    """The graph's inputs and outputs with their shapes, a symbolic dimension (the batch) as -1."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def described(values) -> list[tuple[str, list[int]]]:
        return [(v.name, [d if isinstance(d, int) else -1 for d in v.shape]) for v in values]

    return {"inputs": described(session.get_inputs()), "outputs": described(session.get_outputs())}


def _write_triton(directory: Path, model: Path, name: str, graph: dict, sha256: str) -> None:
    (directory / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, directory / "1" / "model.onnx")

    def tensors(values: list[tuple[str, list[int]]]) -> str:
        return ",\n".join(f'  {{ name: "{n}" data_type: TYPE_FP32 dims: [ {", ".join(map(str, shape))} ] }}'
                          for n, shape in values)

    (directory / "config.pbtxt").write_text(
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
        f"input [\n{tensors(graph['inputs'])}\n]\noutput [\n{tensors(graph['outputs'])}\n]\n"
        f'parameters {{ key: "intra_op_thread_count" value {{ string_value: "{settings.ORT_INTRA_OP_THREADS}" }} }}\n'
        f"# Triton numbers versions; the site reads the model file's hash here (GET /v2/models/{name}/config).\n"
        f'parameters {{ key: "sha256" value {{ string_value: "{sha256}" }} }}\n')


def _write_mlserver(directory: Path, model: Path, name: str, graph: dict, sha256: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, directory / "model.onnx")

    def tensors(values: list[tuple[str, list[int]]]) -> list[dict]:
        return [{"name": n, "datatype": "FP32", "shape": shape} for n, shape in values]

    model_settings = {
        "name": name,
        "implementation": f"{MLSERVER_RUNTIME}.OnnxImageModel",
        "platform": "onnxruntime_onnx",
        "versions": [sha256],
        "inputs": tensors(graph["inputs"]),
        "outputs": tensors(graph["outputs"]),
        "parameters": {"uri": "./model.onnx", "version": sha256,
                       "extra": {"intra_op_threads": settings.ORT_INTRA_OP_THREADS,
                                 "graph_optimization": settings.ORT_GRAPH_OPTIMIZATION}},
    }
    (directory / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
