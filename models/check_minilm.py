"""Developer check for the MiniLM ONNX export (not used by fetch.py).

Compares ONNX Runtime output with a plain numpy (float64) BERT forward pass
(must agree within 1e-4) and prints a few cosine similarities. Needs onnxruntime and tokenizers,
so run it from a scratch venv:
    python check_minilm.py MODEL_DIR/minilm-l6-v2 SOURCE_DIR_WITH_model.safetensors
"""

from __future__ import annotations

import json
import sys
from math import erf
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from safetensors_reader import load_safetensors

_erf = np.vectorize(erf)


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def reference(w, cfg, ids, mask):
    """float64 numpy forward pass of BERT + mean pooling + L2 normalisation."""
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype != np.int64}
    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    b, s = ids.shape
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:s]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: t @ w[p + n + ".weight"].T + w[p + n + ".bias"]  # noqa: E731
        split = lambda t: t.reshape(b, s, heads, -1).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        sc = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + bias
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        ctx = (sc / sc.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b, s, -1)
        x = layer_norm(lin(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + _erf(h / np.sqrt(2)))
        x = layer_norm(lin(h, "output.dense") + x, w[p + "output.LayerNorm.weight"],
                       w[p + "output.LayerNorm.bias"], eps)
    m = mask[:, :, None]
    mean = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True), x


def main() -> int:
    out_dir, src_dir = Path(sys.argv[1]), Path(sys.argv[2])
    tok = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    texts = ["food", "bread", "cat", "dog", "A man is playing guitar", "The stock market crashed"]
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    sess = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    emb, hidden = sess.run(["sentence_embedding", "last_hidden_state"],
                           {"input_ids": ids, "attention_mask": mask})
    cfg = json.loads((src_dir / "config.json").read_text())
    ref_emb, ref_hidden = reference(load_safetensors(src_dir / "model.safetensors"), cfg, ids, mask)
    valid = mask.astype(bool)
    print(f"onnxruntime {ort.__version__}")
    print(f"max |emb - ref|    = {np.abs(emb - ref_emb).max():.3e}")
    print(f"max |hidden - ref| = {np.abs(hidden[valid] - ref_hidden[valid]).max():.3e}")
    for i in range(0, len(texts), 2):
        print(f"cos({texts[i]!r}, {texts[i + 1]!r}) = {float(emb[i] @ emb[i + 1]):.4f}")
    ok = np.abs(emb - ref_emb).max() < 1e-4 and np.abs(hidden[valid] - ref_hidden[valid]).max() < 1e-4
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
