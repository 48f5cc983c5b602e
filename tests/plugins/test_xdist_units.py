from tests.plugins.xdist_units import unit


def test_the_image_package_is_one_unit_and_every_other_module_its_own():
    assert unit("tests/container/image/test_podman.py::test_x") == unit("tests/container/image/test_apptainer.py::t[a]")
    assert unit("tests/container/test_definitions.py::test_x") == "tests/container/test_definitions.py"
    assert unit("tests/core/test_files.py::test_a") != unit("tests/core/test_stats.py::test_a")
