"""predictors/catalogue.py: the four models are written in one place, and each has its pages and endpoint."""
from __future__ import annotations

from pathlib import Path

import pytest

from .support import ROOT


def _model_name_lists(path: Path) -> list[int]:
    """Lines of `path` that write two or more model names as one literal list, tuple or set.

    Dicts keyed by model name hold a fact per model (its form, its data source), not the list."""
    import ast

    from predictors.catalogue import NAMES

    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = [i.value for i in node.elts if isinstance(i, ast.Constant) and i.value in NAMES]
            if len(names) >= 2:
                lines.append(node.lineno)
    return lines


def test_the_four_models_are_listed_in_one_place():
    """Issue 16: registry, models, api, train_models, import_model, pipeline and the base template
    each wrote the list; now predictors.catalogue does, and everything reads it."""
    from predictors.catalogue import NAMES

    code = [p for p in (ROOT / "predictors").rglob("*.py")
            if "migrations" not in p.parts and p.name != "catalogue.py"]
    offenders = {str(p.relative_to(ROOT)): lines for p in code if (lines := _model_name_lists(p))}
    assert offenders == {}
    templates = {p.name: p.read_text() for p in (ROOT / "templates").rglob("*.html")}
    assert [name for name, text in templates.items()
            if sum(f"'{model}'" in text or f'"{model}"' in text for model in NAMES) >= 2] == []


@pytest.mark.django_db
def test_every_catalogued_model_has_its_pages_and_endpoint(admin_client, artifacts):
    from predictors.catalogue import MODEL_SPECS
    from predictors.openapi import build_document

    nav = admin_client.get("/").content.decode()
    paths = build_document()["paths"]
    history = admin_client.get("/history/").content.decode()
    for spec in MODEL_SPECS:
        assert f'href="/predict/{spec.name}/">{spec.nav}</a>' in nav
        assert f'<option value="{spec.name}">{spec.title}</option>' in history
        assert admin_client.get(f"/models/{spec.name}/").status_code == 200
        assert f"/api/v1/predict/{spec.name}" in paths
