"""The embedding network's ONNX export.

:func:`export_onnx` exports a model folder's network to ONNX once (cached under
``cache_root()/onnx/<key>/``), fuses its attention, LayerNorm and GELU subgraphs (:func:`_fuse`) and,
for the int8 backend, quantises its weights (dynamically: each run scales its activations itself, so
:mod:`opm_nlp.embedding.runner` runs every answer alone). torch, transformers and onnxruntime are
imported only when used.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from opm_nlp.embedding.cache import cache_root
from opm_nlp.embedding.folder import mean_pooling, quiet_hf
from opm_nlp.exceptions import ModelError

logger = logging.getLogger(__name__)

#: Version of the ONNX export recipe, part of the export's and the onnx embeddings' cache keys: bump it
#: whenever :func:`export_onnx` changes, so exports and embeddings made the old way are never reused.
#: 2: eager attention, fused by onnxruntime's transformer optimizer, Attention quantised too.
ONNX_RECIPE = 2


def _check_mean_pooling(folder: Path) -> None:
    if not mean_pooling(folder):
        raise ModelError(f"The onnx backends support mean-pooling models only; {folder} uses another "
                         f"pooling. Use --backend torch.")


def export_onnx(folder: Path, key: str, quantize: bool = False, layers: int = 1) -> Path:
    """Export a sentence-transformers model folder to ONNX once, and cache it.

    The graph's outputs are the token states of the last ``layers`` layers, the top one first.
    Returns the path of ``model.onnx`` (or ``model.int8.onnx`` when ``quantize``) under
    ``cache_root()/onnx/<key>/``. The export needs torch and transformers; later runs only read it.
    """
    _check_mean_pooling(folder)
    target = cache_root() / "onnx" / key
    fp32 = target / "model.onnx"
    int8 = target / "model.int8.onnx"
    if not fp32.is_file():
        target.mkdir(parents=True, exist_ok=True)
        logger.info("exporting %s to ONNX (once) in %s", folder, target)
        _export(folder, fp32, layers)
    if quantize and not int8.is_file():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target / f".model.int8.{os.getpid()}.onnx"
        # Per-channel weights on the MatMuls and fused Attentions only: quantising everything (the
        # default) took the mean cosine to the torch embeddings from 0.99 down to 0.95 on NHS answers,
        # and so did per-tensor weights.
        root = logging.getLogger()
        hint = _DropQuantizationHint()  # onnxruntime logs a pre-processing tip on the root logger
        root.addFilter(hint)
        try:
            # the fused ops are not ONNX-standard, so shape inference cannot type their outputs
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.removeFilter(hint)
        os.replace(tmp, int8)
    return int8 if quantize else fp32


class _DropQuantizationHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname


def _export(folder: Path, path: Path, layers: int = 1) -> None:
    import warnings

    quiet_hf()
    import torch
    from transformers import AutoModel, AutoTokenizer

    # eager attention exports the plain softmax(QK')V pattern that onnxruntime's optimizer fuses
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    sample = tokenizer(["an example answer", "a second, longer example answer"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            if layers == 1:
                return self.inner(**dict(zip(names, args))).last_hidden_state
            return tuple(self.inner(**dict(zip(names, args)), output_hidden_states=True).hidden_states[::-1][:layers])

    handle, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            outputs = ["last_hidden_state"] + [f"hidden_state_{-i}" for i in range(2, layers + 1)]
            torch.onnx.export(_Hidden(model), tuple(sample[n] for n in names), tmp, input_names=names,
                              output_names=outputs,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, *outputs]},
                              opset_version=17, dynamo=False)
        _fuse(tmp, folder, {n: sample[n].numpy() for n in names})
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fuse(path: str, folder: Path, sample: dict[str, np.ndarray]) -> None:
    """Fuse attention, LayerNorm and GELU subgraphs of the export at ``path`` in place.

    Fused, the network needs far smaller buffers for long answers (the peak memory of tagging no
    longer grows with the input) and, quantised, runs slightly faster. The fused graph replaces the
    export only if it gives the same hidden states on a sample.
    """
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((folder / "config.json").read_text())
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if not heads or not hidden:
        return
    fused = f"{path}.fused"
    try:
        optimize_model(path, model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(fused)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        before, after = (onnxruntime.InferenceSession(p, options, providers=["CPUExecutionProvider"])
                         .run(None, sample) for p in (path, fused))
        if len(before) == len(after) and all(np.allclose(b, a, atol=1e-3) for b, a in zip(before, after)):
            os.replace(fused, path)
        else:
            logger.warning("onnxruntime's optimizer changed the outputs of %s; using the unfused export", folder)
    finally:
        Path(fused).unlink(missing_ok=True)
