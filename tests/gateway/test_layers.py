"""The error builder is the bottom layer of the gateway: it imports no other gateway module, not even for types."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gateway.errors


def test_errors_import_no_other_gateway_module():
    tree = ast.parse(Path(gateway.errors.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name.split(".")[0] == "gateway"}


def test_importing_errors_loads_neither_capabilities_nor_schemas():
    check = "import sys, gateway.errors; print(sorted({'gateway.capabilities', 'gateway.schemas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
