from pathlib import Path

from tests.plugins.xdist_units import LONG, first_long, unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_package_is_one_unit_and_every_other_module_its_own():
    assert unit("tests/container/image/test_podman.py::test_x") == unit("tests/container/image/test_apptainer.py::t[a]")
    assert unit("tests/container/test_definitions.py::test_x") == "tests/container/test_definitions.py"
    assert unit("tests/core/test_files.py::test_a") != unit("tests/core/test_stats.py::test_a")


def test_the_long_units_go_first_longest_first_and_the_rest_keep_their_order():
    units = ["tests/a.py", "tests/mlpf/train/test_parity.py", "tests/b.py", "tests/container/image/", "tests/c.py"]
    assert first_long(units) == [
        "tests/container/image/",
        "tests/mlpf/train/test_parity.py",
        "tests/a.py",
        "tests/b.py",
        "tests/c.py",
    ]


def test_every_long_unit_exists():
    # A renamed module would silently lose its place at the front.
    for name in LONG:
        assert (ROOT / name).exists(), name
