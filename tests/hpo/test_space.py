"""The search space: the study's samplers, YAML overrides, and clear errors for bad values."""

from __future__ import annotations

import pytest

from hepbench.core.hyperparameters import CSV_COLUMN_ORDER
from hepbench.hpo.space import CSV_COLUMNS, NAMES, SpaceError, default_space, load_space, parse_space
from hepbench.mlpf.config import load_config, with_hyperparameters


def test_default_space_is_the_studys():
    space = default_space()
    assert [d.name for d in space.dimensions] == [
        "lr",
        "num_graph_layers_id",
        "num_graph_layers_reg",
        "dropout",
        "bin_size",
        "output_dim",
        "weight_decay",
    ]
    assert (space["lr"].sampler, space["lr"].low, space["lr"].high) == ("loguniform", 1e-6, 3e-2)
    assert (space["num_graph_layers_id"].sampler, space["num_graph_layers_id"].q) == ("quniform", 1)
    assert space["bin_size"].values == (8, 16, 32, 64, 128)
    assert space["output_dim"].values == (8, 16, 32, 64, 128, 256)
    assert (space["weight_decay"].low, space["weight_decay"].high) == (1e-6, 1e-1)
    assert (space["dropout"].low, space["dropout"].high) == (0.0, 0.5)
    assert sorted(CSV_COLUMNS.values()) == sorted(CSV_COLUMN_ORDER)
    assert NAMES["lr"] == ("learning_rate", "lr", float) and NAMES["num_graph_layers_id"] == (
        "num_graph_layers_id",
        "n_glayers_id",
        int,
    )


def test_samples_are_valid_model_configurations():
    pytest.importorskip("ray")
    import random

    space = default_space()
    tune_space = space.to_tune()
    random.seed(0)
    base = load_config()
    for _ in range(50):
        config = {name: sampler.sample() for name, sampler in tune_space.items()}
        hp = space.to_hyperparameters(config)
        assert isinstance(hp["num_graph_layers_id"], int) and 0 <= hp["num_graph_layers_id"] <= 4
        assert hp["bin_size"] in (8, 16, 32, 64, 128) and isinstance(hp["bin_size"], int)
        assert 1e-6 <= hp["learning_rate"] <= 3e-2 and 0 <= hp["dropout"] <= 0.5
        cfg = with_hyperparameters(base, **hp)  # the model accepts every point of the space
        assert cfg.model.output_dim == hp["output_dim"]


def test_configspace_for_bohb_matches():
    pytest.importorskip("ConfigSpace")
    cs = default_space().to_configspace(seed=1)
    assert sorted(cs.keys()) == sorted(CSV_COLUMNS)
    for _ in range(20):
        hp = default_space().to_hyperparameters(dict(cs.sample_configuration()))
        assert hp["num_graph_layers_reg"] in range(5) and hp["output_dim"] in (8, 16, 32, 64, 128, 256)
        assert 1e-6 <= hp["weight_decay"] <= 1e-1


def test_a_file_replaces_only_its_entries(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("dropout: {sampler: constant, value: 0.1}\nbin_size: {sampler: choice, values: [16, 32]}\n")
    space = load_space(path)
    assert space["dropout"].values == (0.1,) and space["bin_size"].values == (16, 32)
    assert space["lr"] == default_space()["lr"]
    assert space.to_hyperparameters({**{d.name: d.bounds()[0] for d in space.dimensions}})["dropout"] == 0.1


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: {sampler: loguniform, low: 0, high: 1}", "lr: loguniform needs low > 0"),
        ("lr: {sampler: uniform, low: 0.1, high: 0.01}", "lr: low must be below high"),
        (
            "dropout: {sampler: uniform, low: 0.0, high: 1.5}",
            r"dropout: 1.5 is not a valid dropout \(dropout must be a number in \[0, 1\)\)",
        ),
        ("bin_size: {sampler: choice, values: []}", "bin_size: choice needs a non-empty list"),
        ("bin_size: {sampler: choice, values: [16, 0]}", "bin_size: 0 is not a valid bin_size"),
        ("output_dim: {sampler: choice, values: [8, 8]}", "output_dim: choice values repeat"),
        # refused, not truncated to 2 layers
        ("num_graph_layers_reg: {sampler: constant, value: 2.5}", "num_graph_layers_reg: 2.5 is not a valid"),
        (
            "bin_size: {sampler: choice, values: [16, 31.5]}",
            r"31.5 is not a valid bin_size \(bin_size must be a positive integer\)",
        ),
        (
            "num_graph_layers_id: {sampler: quniform, low: -1, high: 4, q: 1}",
            r"num_graph_layers_id: -1 is not a valid num_graph_layers_id "
            r"\(num_graph_layers_id must be an integer >= 0\)",
        ),
        ("num_graph_layers_id: {sampler: quniform, low: 0, high: 4, q: 0}", "q must be positive"),
        ("lr: {sampler: gaussian, low: 0, high: 1}", "lr: sampler must be one of"),
        ("lr: {sampler: uniform, low: a, high: 1}", "lr: low must be a finite number"),
        ("lr: {sampler: uniform, low: 0.1}", "lr: uniform needs low and high"),
        ("lr: {sampler: uniform, low: 0.1, high: 0.2, q: 1}", r"lr: uniform takes \['high', 'low'\], not \['q'\]"),
        ("depth: {sampler: uniform, low: 1, high: 2}", r"unknown hyperparameter\(s\) \['depth'\]"),
        ("lr: 0.01", "lr: expected a mapping"),
        ("- lr", "expected a mapping of hyperparameter names"),
    ],
)
def test_bad_space_files_name_the_file_and_entry(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=message) as e:
        load_space(path)
    assert str(path) in str(e.value)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(SpaceError, match="absent.yaml: cannot be read"):
        load_space(tmp_path / "absent.yaml")
    (tmp_path / "x.yaml").write_text("lr: [unclosed")
    with pytest.raises(SpaceError, match="x.yaml: not valid YAML"):
        load_space(tmp_path / "x.yaml")


def test_a_full_space_must_name_every_dimension():
    with pytest.raises(SpaceError, match="missing"):
        parse_space({"lr": {"sampler": "loguniform", "low": 1e-5, "high": 1e-2}}, "inline")


def test_a_missing_extra_is_named(monkeypatch, tmp_path, capsys):
    from hepbench.cli import main
    from hepbench.hpo import extra as hpo_extra

    monkeypatch.setattr(hpo_extra, "EXTRA_MODULES", ("ray.tune", "hepbench_no_such_module"))
    assert main(["hpo", "run", "-w", str(tmp_path / "out")]) == 2
    assert (
        "the hpo commands need the `hpo` extra (hepbench_no_such_module is missing): pip install 'hepbench[hpo]'"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_the_command_line_loads_without_ray_or_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, hepbench.cli; hepbench.cli.build_parser(); "
        "print(sorted(m for m in ('ray', 'tensorflow', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
