"""test_layers.py - lib/'s layer folders (lib/meson.build's lib_layer_uses,
docs/DEVELOPING.md "lib/ layers") hold in the sources: every #include in
lib/<layer>/ names a header of its own layer or of one it may use, every lib
.c file is in a layer folder and listed in lib/meson.build.  A static check
(no build): tests/static/check_layers.py.  The build enforces the same
through include directories and, on the built archives, the symbols
(lib/meson.build target lib-layers); the mutation tests below prove the
source check catches each kind of break on a copy of today's lib/.
"""
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import check_layers  # noqa: E402


def test_lib_follows_its_layers():
    assert check_layers.check_sources(REPO) == []


def test_layer_table_has_no_cycle_and_base_uses_nothing():
    table = check_layers.parse_table(REPO / "lib/meson.build")
    assert table["base"] == []
    allowed = check_layers.closure(table)
    assert "module" not in allowed["k8s"], "the k8s client must not depend on the module runtime"
    for layer, uses in allowed.items():
        for u in uses - {layer}:
            assert layer not in allowed[u], f"{layer} and {u} use each other"


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(REPO / "lib", tmp_path / "lib")
    return tmp_path


def test_upward_include_is_caught(tree):
    f = tree / "lib/base/xstr.c"
    f.write_text('#include "k8s.h"\n' + f.read_text())
    problems = check_layers.check_sources(tree)
    assert len(problems) == 1
    assert "lib/base/xstr.c" in problems[0] and "'k8s'" in problems[0]


def test_k8s_client_including_module_runtime_is_caught(tree):
    f = tree / "lib/k8s/k8s.h"
    f.write_text(f.read_text().replace("#include <jansson.h>", '#include <jansson.h>\n#include "module.h"'))
    problems = check_layers.check_sources(tree)
    assert any("lib/k8s/k8s.h" in p and "'module'" in p for p in problems), problems


def test_flat_or_unlisted_file_is_caught(tree):
    (tree / "lib/new.c").write_text("/* new.c */\n")
    (tree / "lib/dr/extra.c").write_text("/* extra.c */\n")
    problems = "\n".join(check_layers.check_sources(tree))
    assert "lib/new.c: not in a layer folder" in problems
    assert "lib/dr/extra.c: not listed" in problems


def test_layer_cycle_in_table_is_refused():
    with pytest.raises(SystemExit, match="use each other"):
        check_layers.closure({"a": ["b"], "b": ["a"]})
