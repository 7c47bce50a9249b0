"""Architecture rules: core/ never imports gradio or app (checked in a fresh interpreter and in the source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_sources_never_import_gradio_or_app():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in ("gradio", "gradio_client", "app"):
                    offenders.append(f"{path.relative_to(ROOT)}: {n}")
    assert not offenders, offenders


def test_importing_core_loads_no_gradio():
    code = (
        "import sys, core, core.render, core.cli, core.models, core.checkpoints.native; "
        "core.cli.build_parser(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('gradio', 'app')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
