"""Every figure in the docs' results tables is its committed JSON's: each row `bench.doc_tables` renders from the
JSON stands in the doc as it is."""

from __future__ import annotations

import pytest

from bench.doc_tables import TABLES, rendered


@pytest.mark.parametrize("name", list(TABLES))
def test_each_table_row_in_the_docs_is_rendered_from_its_json(name):
    doc, source, _ = TABLES[name]
    lines = set(doc.read_text(encoding="utf-8").splitlines())
    missing = [row for row in rendered(name) if row not in lines]
    assert not missing, f"{doc.name} differs from {source.name} ({name}); first row not found: {missing[0]}"
