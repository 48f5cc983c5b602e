"""OutputDecoding: the point-wise heads that turn node embeddings into particle predictions.

Heads (hidden width `decoder_hidden_dim`, halved after each hidden layer, elu):
  cls    → 6 logits (softmax)      charge → 1          from the id stack (layer-normalised)
  eta    → 1, added to the input eta;  phi → 2, added to the input sin/cos phi
                                   from the id stack and the class logits (stop-gradient)
  pt     → 2: pt = |pt_in * c0 + c1|;  energy → 1, added to the input energy
                                   from the id stack, the logits, the reg stack and the logits again
As in the reference, the logits reach the pt/energy heads twice; this sets their width (and the
reference parameter count) and is kept for fidelity.
"""

from __future__ import annotations

import keras
from keras import ops

from hepbench.mlpf.data.format import NUM_CLASSES, XCol
from hepbench.mlpf.model.layers import FeedForward

OUTPUTS = ("cls", "charge", "pt", "eta", "sin_phi", "cos_phi", "energy")


@keras.saving.register_keras_serializable("hepbench")
class OutputDecoding(keras.layers.Layer):
    def __init__(
        self,
        hidden_dim=256,
        id_num_layers=4,
        charge_num_layers=2,
        pt_num_layers=3,
        eta_num_layers=3,
        phi_num_layers=3,
        energy_num_layers=3,
        activation="elu",
        dropout=0.0,
        regression_use_classification=True,
        layernorm=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim, self.activation, self.dropout = hidden_dim, activation, dropout
        self.num_layers = {
            "cls": id_num_layers,
            "charge": charge_num_layers,
            "pt": pt_num_layers,
            "eta": eta_num_layers,
            "phi": phi_num_layers,
            "energy": energy_num_layers,
        }
        self.regression_use_classification, self.layernorm = regression_use_classification, layernorm
        sizes = {"cls": NUM_CLASSES, "charge": 1, "pt": 2, "eta": 1, "phi": 2, "energy": 1}
        policy = self.dtype_policy
        self.heads = {
            name: FeedForward(
                sizes[name],
                hidden_dim,
                self.num_layers[name],
                activation,
                dim_decrease=True,
                dropout=dropout,
                name=f"ffn_{name}",
                dtype=policy,
            )
            for name in sizes
        }
        self.norm = keras.layers.LayerNormalization(axis=-1, name="layernorm_id", dtype=policy) if layernorm else None

    def build(self, input_shape):
        # enc_id and enc_reg come as lists of blocks that stand for their concatenation.
        _, id_shapes, reg_shapes, _ = input_shape
        id_width, reg_width = sum(s[-1] for s in id_shapes), sum(s[-1] for s in reg_shapes)
        if self.norm is not None:
            self.norm.build((*id_shapes[0][:-1], id_width))
        logits = NUM_CLASSES if self.regression_use_classification else 0
        widths = {
            "cls": id_width,
            "charge": id_width,
            "eta": id_width + logits,
            "phi": id_width + logits,
            "pt": id_width + 2 * logits + reg_width,
            "energy": id_width + 2 * logits + reg_width,
        }
        for name, head in self.heads.items():
            head.build((None, None, widths[name]))

    def call(self, inputs, training=None):
        X, id_blocks, reg_blocks, mask = inputs
        X = ops.cast(X, self.compute_dtype)
        enc_id = ops.concatenate(list(id_blocks), axis=-1)  # the layer norm needs the whole vector
        if self.norm is not None:
            enc_id = self.norm(enc_id)
        logits = self.heads["cls"](enc_id, training=training) * mask
        charge = self.heads["charge"](enc_id, training=training) * mask

        # The regression heads' inputs as block lists (see FeedForward): [id, logits] and
        # [id, logits, reg blocks..., logits], never concatenated in memory.
        x_id = [enc_id]
        if self.regression_use_classification:
            x_id.append(ops.stop_gradient(logits))
        eta_corr = self.heads["eta"](x_id, training=training) * mask
        phi_corr = self.heads["phi"](x_id, training=training) * mask

        x_reg = [*x_id, *reg_blocks]
        if self.regression_use_classification:
            x_reg.append(ops.stop_gradient(logits))
        energy_corr = self.heads["energy"](x_reg, training=training) * mask
        pt_corr = self.heads["pt"](x_reg, training=training) * mask

        def col(c):
            return X[..., c : c + 1]

        eta = ops.clip(col(XCol.ETA) + eta_corr, -7.0, 7.0)
        sin_phi = ops.clip(col(XCol.SIN_PHI) + phi_corr[..., 0:1], -1.0, 1.0)
        cos_phi = ops.clip(col(XCol.COS_PHI) + phi_corr[..., 1:2], -1.0, 1.0)
        energy = ops.abs(col(XCol.ENERGY) * mask + energy_corr)
        pt = ops.abs(col(XCol.PT) * pt_corr[..., 0:1] + pt_corr[..., 1:2])
        # Losses and the softmax in float32, whatever the compute precision.
        out = {
            "cls_logits": logits,
            "charge": charge,
            "pt": pt,
            "eta": eta,
            "sin_phi": sin_phi,
            "cos_phi": cos_phi,
            "energy": energy,
        }
        out = {k: ops.cast(v * mask, "float32") for k, v in out.items()}
        out["cls"] = ops.softmax(out["cls_logits"], axis=-1) * ops.cast(mask, "float32")
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "activation": self.activation,
            "dropout": self.dropout,
            "regression_use_classification": self.regression_use_classification,
            "layernorm": self.layernorm,
            **{f"{k if k != 'cls' else 'id'}_num_layers": v for k, v in self.num_layers.items()},
        }
