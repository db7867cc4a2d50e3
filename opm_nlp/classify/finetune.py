"""The embedding model fine-tuned on the coded answers, as one more view of each answer.

:class:`FineTunedHead` trains the sentence-transformers network end to end with a linear multi-label
head (one output per code) on the coded answers, on CPU, and gives each answer one score per code.
:func:`cross_fitted` gives those scores for the training answers themselves from networks that never saw
them (two halves, each fine-tuned on the other), so the classifier's stacker can learn how far to trust
the fine-tuned view; the network it keeps for new answers is fine-tuned on all of them.

Why it is fast enough on a laptop: batches hold answers of similar length (little padding), which made
an epoch over ~4,000 answers take ~75 s on 2 cores instead of ~290 s with random batches
(docs/benchmarks.md), and at most :data:`MAX_TOKENS` tokens of answers train each network. PyTorch is
imported only here, only to fine-tune (and to export the network to ONNX once): tagging runs the export.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from opm_nlp.classify.rowwise import row_products
from opm_nlp.exceptions import ModelError

logger = logging.getLogger(__name__)

#: Chosen on a held-out fifth of the NHS train split (docs/benchmarks.md): two epochs beat one.
DEFAULT_EPOCHS = 2
#: :class:`~opm_nlp.model.coding_model.CodingModel` fine-tunes by default from this many coded answers: with
#: thousands it gained on every NHS check (docs/benchmarks.md); with ~400 the gain was within noise, for
#: minutes more training.
MIN_ANSWERS = 1000
#: Fine-tuning learns from at most this many tokens of answers per network (a random sample of the
#: answers; each cross-fitting network from its share), so its cost stops growing with the data and with
#: the length of the answers: ~10 minutes on 2 cores at most. The NHS train split with the codebook's
#: examples (5,416 answers of 19 tokens on average) is just under it. The other views learn from all.
MAX_TOKENS = 120_000
#: New networks score through their int8 export, as the frozen network does: the network runs ~1.8 times as
#: fast, and on a validation part of the NHS train split the model's micro- and macro-F1 stayed within 0.004
#: of float32's (docs/benchmarks.md, "Tagging with a fine-tuned model").
QUANTIZE = True
#: Tokens kept per answer while training (the scores of new answers read up to the model's own limit).
TRAIN_MAX_LENGTH = 128


def check_model(model: str | None) -> Path:
    """The local folder of a model that can be fine-tuned (mean pooling), or a :class:`ModelError`."""
    from opm_nlp.embedding.folder import mean_pooling, resolve_model_path

    model_id, folder = resolve_model_path(model)
    if folder is None or not mean_pooling(folder):
        raise ModelError(f"Fine-tuning needs a local mean-pooling model folder; '{model_id}' is not one. "
                         f"Leave out --fine-tune, or pass such a folder with --embedding-model.")
    return folder


def can_fine_tune(model: str | None) -> bool:
    """Whether :func:`check_model` accepts ``model``."""
    try:
        check_model(model)
    except ModelError:
        return False
    return True


def _mean_normalised(states, mask):
    import torch

    weights = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


class FineTunedHead:
    """A sentence-transformers network and a multi-label head, fine-tuned together on coded answers.

    Parameters
    ----------
    model : str, optional
        Embedding model id or local folder (as :class:`~opm_nlp.embedding.encoder.Embedder`); it must be a
        local mean-pooling model. Default the packaged all-MiniLM-L6-v2.
    epochs : int
        Passes over the answers.
    batch_size, max_length : int
        Answers per step, and tokens kept per answer while training.
    lr, head_lr : float
        Learning rates of the network and of the (new) head.
    seed : int
        Seed of the head's initial weights and of the batch order.
    quantize : bool
        Score through the network's int8 ONNX export (the frozen network's recipe) instead of its
        float32 one. :func:`cross_fitted` passes it on, so the stacker learns from the scores tagging
        gives. Models saved before this option score through float32 (``quantize=False``).

    After :meth:`fit`, the fine-tuned weights are kept with the estimator (as float16: a saved MiniLM
    model grows by about 40 MB); :meth:`decision_function` gives one score (a logit) per code.
    """

    #: the head reads the normalised embedding scaled by this (a temperature: unit vectors give tiny logits)
    SCALE = 10.0

    def __init__(self, model: str | None = None, epochs: int = DEFAULT_EPOCHS, batch_size: int = 32,
                 max_length: int = TRAIN_MAX_LENGTH, lr: float = 5e-5, head_lr: float = 3e-3, seed: int = 0,
                 quantize: bool = QUANTIZE):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.lr = lr
        self.head_lr = head_lr
        self.seed = seed
        self.quantize = quantize

    def _network(self):
        """The tokenizer and the network with its initial (pretrained) weights."""
        from opm_nlp.embedding.folder import quiet_hf

        folder = check_model(self.model)
        quiet_hf()
        from transformers import AutoModel

        return _tokenizer(self.model), AutoModel.from_pretrained(str(folder))

    def fit(self, texts: Sequence[str], Y, progress: str | None = None) -> FineTunedHead:
        """Fine-tune on ``texts`` and their 0/1 code matrix ``Y`` (n_answers x n_codes).

        ``progress`` (optional) labels a progress bar of the training steps, on stderr.
        """
        import torch
        from tqdm.auto import tqdm

        texts = [str(t) for t in texts]
        Y = np.asarray(Y, dtype=np.float32)
        torch.manual_seed(self.seed)
        rng = np.random.RandomState(self.seed)
        tokenizer, network = self._network()
        head = torch.nn.Linear(network.config.hidden_size, Y.shape[1])
        optimiser = torch.optim.AdamW([{"params": network.parameters(), "lr": self.lr},
                                       {"params": head.parameters(), "lr": self.head_lr}])
        targets = torch.from_numpy(Y)
        # class-balanced loss, capped: rare codes count more, but one answer never counts 100 times
        share = targets.mean(0)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=((1 - share) / share.clamp(min=1e-3)).clamp(max=20.0))
        lengths = token_lengths(texts, self.model, self.max_length)
        network.train()
        steps = self.epochs * -(-len(texts) // self.batch_size)
        with tqdm(total=steps, desc=progress, unit="step", disable=progress is None) as bar:
            for _ in range(self.epochs):
                # answers of similar length batched together (a little noise so batches differ between epochs)
                order = np.argsort(lengths + rng.uniform(0, 3, len(texts)), kind="stable")
                batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
                rng.shuffle(batches)
                for rows in batches:
                    inputs = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                    states = network(**inputs).last_hidden_state
                    logits = head(_mean_normalised(states, inputs["attention_mask"]) * self.SCALE)
                    loss = loss_fn(logits, targets[rows])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    bar.update()
        # float weights kept as float16 (half the size); integer buffers as they are
        self.weights_ = {name: value.detach().numpy().astype(np.float16) if value.is_floating_point()
                         else value.detach().numpy() for name, value in network.state_dict().items()}
        self.head_ = (head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy())
        self.n_codes_ = Y.shape[1]
        self._loaded = self._embedder = None
        self.__dict__.pop("weights_sha256", None)
        return self

    def _load(self):
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            import torch

            tokenizer, network = self._network()
            state = {name: torch.from_numpy(value.astype(np.float32) if value.dtype == np.float16 else value)
                     for name, value in self.weights_.items()}
            network.load_state_dict(state)
            network.eval()
            loaded = self._loaded = (tokenizer, network)
        return loaded

    def decision_function(self, texts: Sequence[str], backend: str = "onnx", cache: bool = True,
                          progress: str | None = None) -> np.ndarray:
        """One score per answer and code (a logit: above 0 leans towards the code), shape (n, n_codes).

        ``backend`` 'torch' runs the network in PyTorch (float32), in this process; 'onnx' exports it
        once to ONNX (see :meth:`network_folder`), int8 with ``quantize`` else float32, and, with
        ``cache``, keeps its embeddings in the on-disk cache. PyTorch and ONNX float32 give the same
        scores to within 1e-5; int8 moves 0.6-2.5% of them to the other side of 0 (docs/benchmarks.md),
        which the stacker, trained on int8 scores too, allows for. ``progress`` (optional) labels a
        progress bar of the ONNX run, on stderr.
        """
        texts = [str(t) for t in texts]
        if backend == "torch":
            pooled = self._torch_embeddings(texts)
        else:
            from opm_nlp.embedding.encoder import Embedder

            embedder = getattr(self, "_embedder", None)
            if embedder is None:
                embedder = self._embedder = Embedder(str(self.network_folder()),
                                                     backend="onnx-int8" if self.quantize else "onnx")
                # named by its weights, not by where the cache lives: exports and embeddings follow a moved cache
                embedder.model_id = f"fine-tuned/{self.weights_sha256[:16]}"
            embedder.cache = cache
            embedder.show_progress = progress or False
            try:
                pooled = embedder.encode(texts) if texts else np.zeros((0, self.head_[0].shape[1]), np.float32)
            finally:
                embedder.forget()  # memory stays flat on long runs; the disk cache keeps the vectors
        weight, bias = self.head_
        return (row_products(pooled * self.SCALE, weight) + bias).reshape(len(texts), self.n_codes_)

    def _torch_embeddings(self, texts: list[str]) -> np.ndarray:
        import torch

        from opm_nlp.embedding.folder import max_seq_length
        from opm_nlp.embedding.runner import default_threads, each_alone, one_torch_thread

        tokenizer, network = self._load()
        max_length = max_seq_length(check_model(self.model))

        def embed(inputs) -> np.ndarray:
            with torch.no_grad():
                return _mean_normalised(network(**inputs).last_hidden_state, inputs["attention_mask"]).numpy()[0]

        # each answer alone, on one thread, as the embedding runner does: its vector whatever the batch
        inputs = [tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt") for text in texts]
        if not inputs:
            return np.zeros((0, self.head_[0].shape[1]), np.float32)
        with one_torch_thread():
            return each_alone(inputs, embed, default_threads(), None)

    @functools.cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the fine-tuned weights (names, types and values)."""
        digest = hashlib.sha256()
        for name in sorted(self.weights_):
            value = np.ascontiguousarray(self.weights_[name])
            digest.update(f"{name}|{value.dtype}|{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    def network_folder(self) -> Path:
        """A model folder holding the fine-tuned network, written once under the cache root.

        The base model's folder with the fine-tuned weights (float32) in place of its own, in
        ``cache_root()/fine-tuned/<hash of the weights>/``, readable by the owner only: the weights are
        learnt from the coded answers. The ONNX export and the embedding cache key on it like any model.
        """
        from safetensors.numpy import save_file

        from opm_nlp.embedding.cache import cache_root
        from opm_nlp.embedding.folder import WEIGHT_FILES

        parent = cache_root() / "fine-tuned"
        folder = parent / self.weights_sha256[:16]
        if (folder / "model.safetensors").is_file():
            return folder
        base = check_model(self.model)
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))  # created owner-only
        try:
            for item in base.iterdir():
                if item.name not in WEIGHT_FILES and item.name != "README.md":
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, staging / item.name)
            save_file({name: np.ascontiguousarray(value.astype(np.float32) if value.dtype == np.float16 else value)
                       for name, value in self.weights_.items()}, str(staging / "model.safetensors"))
            try:
                os.replace(staging, folder)
            except OSError:  # another process wrote it first
                if not (folder / "model.safetensors").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    def release(self) -> None:
        """Delete this network's folder and ONNX export from the cache (for a network used once)."""
        embedder = getattr(self, "_embedder", None)
        if embedder is not None:
            embedder.remove_export()
            self._embedder = None
            shutil.rmtree(embedder.path, ignore_errors=True)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loaded"] = None  # the network is rebuilt from the kept weights when first needed
        state.pop("_embedder", None)
        return state


@functools.lru_cache(maxsize=4)
def _tokenizer(model: str | None):
    from opm_nlp.embedding.folder import quiet_hf

    quiet_hf()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(check_model(model)))


def token_lengths(texts: Sequence[str], model: str | None = None, max_length: int = TRAIN_MAX_LENGTH) -> np.ndarray:
    """Tokens per answer, as fine-tuning reads them (truncated to ``max_length``)."""
    return np.array([len(ids) for ids in _tokenizer(model)(list(texts), truncation=True, max_length=max_length)["input_ids"]])


def cross_fitted(texts: Sequence[str], Y, folds: np.ndarray, max_tokens: int = MAX_TOKENS, progress: bool = False,
                 **params) -> tuple[np.ndarray, FineTunedHead]:
    """Scores of the training answers from networks that did not see them, and a network fine-tuned on all.

    ``folds`` assigns each answer to a part; for each part a network is fine-tuned on the other parts
    and scores it. Two parts cost about as much fine-tuning as one pass over all answers. The final
    network learns from answers of at most ``max_tokens`` tokens in all, and each part's network from
    at most its share of them (random samples of the answers beyond that). ``progress`` shows a
    progress bar of each network's training and scoring, on stderr.
    """
    texts = [str(t) for t in texts]
    Y = np.asarray(Y)
    parts = np.unique(folds)
    lengths = token_lengths(texts, params.get("model"), params.get("max_length", TRAIN_MAX_LENGTH))
    rng = np.random.RandomState(params.get("seed", 0))
    oof = np.zeros(Y.shape, dtype=np.float64)
    networks = len(parts) + 1
    for k, part in enumerate(parts, start=1):
        rest = _within(np.flatnonzero(folds != part), lengths, max_tokens // len(parts), rng)
        held = np.flatnonzero(folds == part)
        logger.info("fine-tuning on %d answers to score %d", len(rest), len(held))
        head = FineTunedHead(**params).fit([texts[i] for i in rest], Y[rest],
                                           progress=f"fine-tuning network {k} of {networks}" if progress else None)
        try:  # as tagging will score new answers (ONNX), ~3 times as fast as PyTorch
            oof[held] = head.decision_function([texts[i] for i in held], cache=False,
                                               progress=f"scoring with network {k}" if progress else None)
        finally:
            head.release()
    rows = _within(np.arange(len(texts)), lengths, max_tokens, rng)
    logger.info("fine-tuning on %d of the %d answers", len(rows), len(texts))
    return oof, FineTunedHead(**params).fit([texts[i] for i in rows], Y[rows], progress=(
        f"fine-tuning network {networks} of {networks}" if progress else None))


def _within(rows: np.ndarray, lengths: np.ndarray, max_tokens: int, rng: np.random.RandomState) -> np.ndarray:
    """``rows`` if their answers hold at most ``max_tokens`` tokens, else a random sample of them that does."""
    if lengths[rows].sum() <= max_tokens:
        return rows
    shuffled = rng.permutation(rows)
    return np.sort(shuffled[np.cumsum(lengths[shuffled]) <= max_tokens])
