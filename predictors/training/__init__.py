"""Training, export and quantization of the demo models.

Needs requirements-train.txt (torch, torchvision, scikit-learn, onnx, neurokit2,
matplotlib). The web process never imports this package; it only reads what this
package writes into predictors/artifacts/ (see predictors.serving.artifacts).
"""
