"""`hepbench model summary`: the model's layers, parameter counts and training cost per event."""

from __future__ import annotations

import argparse
import json

from hepbench.core.cliargs import positive_int
from hepbench.core.terminal import Table, emit
from hepbench.mlpf.config_cli import add_config_arguments, config_from_args
from hepbench.mlpf.model.flops import forward_flops, training_flops


def register(groups) -> None:
    model = groups.add_parser("model", help="inspect the MLPF model")
    commands = model.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("summary", help="layers, parameter counts and FLOPs per event")
    add_config_arguments(p)
    p.add_argument(
        "--elements",
        type=positive_int,
        default=6400,
        help="elements per event for the FLOP estimate (padded to the bin size; default 6400)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_summary)


def _summary(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from hepbench.mlpf.model.mlpf import build_model, count_parameters, parameter_counts  # here: TensorFlow/Keras

    model = build_model(cfg.model, cfg.train.precision)
    trainable, frozen = parameter_counts(model)
    rows = [
        (layer.name, count_parameters(layer.trainable_weights), count_parameters(layer.non_trainable_weights))
        for layer in model.layers
    ]
    padded = -(-args.elements // cfg.model.bin_size) * cfg.model.bin_size
    forward, training = forward_flops(cfg.model, args.elements), training_flops(cfg.model, args.elements)
    if args.json:
        print(
            json.dumps(
                {
                    "trainable": trainable,
                    "non_trainable": frozen,
                    "layers": [{"name": n, "trainable": t, "non_trainable": f} for n, t, f in rows],
                    "elements": args.elements,
                    "padded_elements": padded,
                    "forward_flops": forward,
                    "training_flops": training,
                    "precision": cfg.train.precision,
                },
                indent=2,
            )
        )
        return 0
    m = cfg.model
    layers = [(name, f"{t:,}", f"{f:,}") for name, t, f in rows] + [("total", f"{trainable:,}", f"{frozen:,}")]
    emit(
        [
            f"PFNetDense (MLPF): {m.num_graph_layers_id} id + {m.num_graph_layers_reg} reg graph layers, "
            f"{m.node_update_mode}, output_dim {m.output_dim}, bin_size {m.bin_size}, precision {cfg.train.precision}",
            Table(("layer", "trainable", "non-trainable"), layers, left=1),
            f"FLOPs per event at {args.elements} elements (padded to {padded}): forward {forward / 1e9:.1f} GFLOP, "
            f"training step about {training / 1e9:.1f} GFLOP (3 x forward; matrix products only)",
        ]
    )
    return 0
