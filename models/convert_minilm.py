"""Build an ONNX graph for all-MiniLM-L6-v2 (BERT encoder + mean pooling + L2).

Weights come from the sentence-transformers model.safetensors; the graph is
written with onnx.helper (opset 17, IR version 8 so ONNX Runtime 1.17 loads it).

Graph inputs:  input_ids, attention_mask  int64 [batch, seq]
Graph outputs: sentence_embedding float32 [batch, 384] (mean pooled, L2 normalised)
               last_hidden_state  float32 [batch, seq, 384]
token_type_ids are taken as all zero (single-sentence use) and folded in.

Inputs: model.safetensors, config.json, tokenizer.json, vocab.txt
Output roles: "onnx", "tokenizer", "vocab" (the last two copied unchanged).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from progress import Progress
from safetensors_reader import load_safetensors

OPSET = 17
IR_VERSION = 8
MASK_VALUE = float(np.finfo(np.float32).min)


class GraphBuilder:
    """Collects nodes and initializers; names are generated deterministically."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0
        self._shared_names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def scalar(self, name: str, value: float) -> str:
        """A float32 scalar initializer created once and reused by name."""
        if name not in self._shared_names:
            self._shared_names.add(name)
            self.const(name, np.array(value, np.float32))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        w = self.const(f"{name}.weight_t", weight.T.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, name: str,
                   eps: float) -> str:
        g = self.const(f"{name}.weight", gamma.astype(np.float32))
        b = self.const(f"{name}.bias", beta.astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        """Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))."""
        sqrt2 = self.scalar("gelu_sqrt2", np.sqrt(2.0))
        one = self.scalar("one_f32", 1.0)
        half = self.scalar("half_f32", 0.5)
        erf = self.op("Erf", [self.op("Div", [x, sqrt2])])
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [erf, one])]), half])


def _embeddings(g: GraphBuilder, w: dict[str, np.ndarray], eps: float) -> str:
    word = g.const("embeddings.word", w["embeddings.word_embeddings.weight"])
    pos_table = g.const("embeddings.position", w["embeddings.position_embeddings.weight"])
    token_type0 = g.const("embeddings.token_type0", w["embeddings.token_type_embeddings.weight"][0])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # 1-D [seq]
    zero = g.const("zero_1d_i64", np.array([0], np.int64))
    positions = g.op("Slice", [pos_table, zero, seq_len, zero])  # rows 0..seq-1
    x = g.op("Add", [g.op("Gather", [word, "input_ids"]), positions])
    x = g.op("Add", [x, token_type0])
    return g.layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        "embeddings.LayerNorm", eps)


def _attention_bias(g: GraphBuilder) -> str:
    """[batch, 1, 1, seq]: 0 where attended, float32 min where masked (as in HF BERT)."""
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("axes_1_2", np.array([1, 2], np.int64))])
    inverted = g.op("Sub", [g.scalar("one_f32", 1.0), mask])
    return g.op("Mul", [inverted, g.const("mask_value", np.array(MASK_VALUE, np.float32))])


def _split_heads(g: GraphBuilder, x: str, shape: str, perm: list[int]) -> str:
    return g.op("Transpose", [g.op("Reshape", [x, shape])], perm=perm)


def _layer(g: GraphBuilder, w: dict[str, np.ndarray], x: str, bias: str, i: int,
           cfg: dict) -> str:
    p = f"encoder.layer.{i}"
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, cfg["layer_norm_eps"]

    def lin(src: str, name: str) -> str:
        return g.linear(src, w[f"{p}.{name}.weight"], w[f"{p}.{name}.bias"], f"{p}.{name}")

    shape = g.const(f"{p}.heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    q = _split_heads(g, lin(x, "attention.self.query"), shape, [0, 2, 1, 3])
    k_t = _split_heads(g, lin(x, "attention.self.key"), shape, [0, 2, 3, 1])
    v = _split_heads(g, lin(x, "attention.self.value"), shape, [0, 2, 1, 3])
    scale = g.const(f"{p}.scale", np.array(1.0 / np.sqrt(head_dim), np.float32))
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k_t]), scale]), bias])
    ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    ctx = g.op("Transpose", [ctx], perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.const(f"{p}.merge_shape", np.array([0, 0, hidden], np.int64))])
    attn = g.op("Add", [lin(ctx, "attention.output.dense"), x])
    x = g.layer_norm(attn, w[f"{p}.attention.output.LayerNorm.weight"],
                     w[f"{p}.attention.output.LayerNorm.bias"], f"{p}.attention.output.LayerNorm", eps)
    ffn = lin(g.gelu(lin(x, "intermediate.dense")), "output.dense")
    return g.layer_norm(g.op("Add", [ffn, x]), w[f"{p}.output.LayerNorm.weight"],
                        w[f"{p}.output.LayerNorm.bias"], f"{p}.output.LayerNorm", eps)


def _mean_pool_normalize(g: GraphBuilder, hidden: str) -> str:
    mask = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                              g.const("axes_last", np.array([-1], np.int64))])
    axis1 = g.const("axes_seq", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, mask]), axis1], keepdims=0)
    count = g.op("ReduceSum", [mask, axis1], keepdims=0)
    count = g.op("Max", [count, g.const("min_count", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, count])
    sq = g.op("ReduceSum", [g.op("Mul", [mean, mean]), "axes_last"], keepdims=1)
    norm = g.op("Max", [g.op("Sqrt", [sq]), g.const("min_norm", np.array(1e-12, np.float32))])
    return g.op("Div", [mean, norm])


def build_model(weights: dict[str, np.ndarray], cfg: dict) -> onnx.ModelProto:
    g = GraphBuilder()
    x = _embeddings(g, weights, cfg["layer_norm_eps"])
    bias = _attention_bias(g)
    for i in range(cfg["num_hidden_layers"]):
        x = _layer(g, weights, x, bias, i, cfg)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    emb = _mean_pool_normalize(g, "last_hidden_state")
    g.nodes.append(helper.make_node("Identity", [emb], ["sentence_embedding"], name="sentence_embedding"))
    hidden = cfg["hidden_size"]
    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        inputs=[helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
                for n in ("input_ids", "attention_mask")],
        outputs=[
            helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden]),
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                          ["batch", "seq", hidden]),
        ],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="voicebotd-models", producer_version="1")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def convert(inputs: dict[str, Path], outputs: dict[str, Path], options: dict) -> None:
    cfg = json.loads(inputs["config.json"].read_text(encoding="utf-8"))
    if cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("convert_minilm supports BERT with exact GELU and absolute positions only")
    with Progress("minilm -> onnx", 3, unit="step") as bar:
        weights = load_safetensors(inputs["model.safetensors"])
        bar.advance()
        model = build_model(weights, cfg)
        bar.advance()
        outputs["onnx"].write_bytes(model.SerializeToString(deterministic=True))
        shutil.copyfile(inputs["tokenizer.json"], outputs["tokenizer"])
        shutil.copyfile(inputs["vocab.txt"], outputs["vocab"])
        bar.advance()
