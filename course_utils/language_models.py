"""Language models on text that ships with Python: data, references and demos for notebook 05.

The corpus is the prose of Python's own documentation, the text behind `help("if")`, which every
Python installation carries in `pydoc_data.topics`: nothing is ever downloaded. Models read it one
character at a time; a token is a character and its id is its index in `Vocabulary.chars`.

Graded references: `sequential_batches(ids, batch_size, seq_len)`, `perplexity(logits, targets)` and
`sample_next(logits, temperature=1.0, top_k=None, generator=None)`, with `sampling_distribution`, the
exact probabilities `sample_next` draws from.

Models share one interface, `model(ids (B, T), state=None) -> (logits (B, T, V), state)`:
`RecurrentLM("RNN" | "LSTM" | "GRU", vocab_size, ...)` (embedding, one nn.RNN/nn.LSTM/nn.GRU layer,
linear read-out) and `TransformerLM(vocab_size, ...)` (the `attention.TinyCausalTransformer` of
notebook 04; it has no state and sees at most `max_len` tokens). `train_language_model` trains either
with Adam and gradient clipping, `evaluate` measures perplexity, `generate` samples text.

Under the autograder (nbgrader sets `NBGRADER_EXECUTION`) `budget` shrinks every training run to a
few steps, so that grading stays fast; nothing graded depends on training.
"""
import math
import os
import time

import pydoc_data.topics
import torch
import torch.nn as nn

from .attention import TinyCausalTransformer, single_thread
from .digits import count as count_parameters
from .reference import reference

# ---------------------------------------------------------------------------------------------
# The corpus and the vocabulary

ASCII_LOOKALIKES = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u2014": "-",
                    "\u2013": "-"}


def load_corpus():
    """The prose of `pydoc_data.topics` as one string (about 260,000 characters).

    Topics in alphabetical order. Dropped: lines indented by three spaces or more (code samples,
    grammar rules, tables) and lines made only of `*=-~^+|` (heading underlines, table borders).
    Typographic quotes, dashes and ellipses become ASCII; other non-ASCII characters are removed;
    runs of blank lines become one blank line.
    """
    lines = []
    for name in sorted(pydoc_data.topics.topics):
        for line in pydoc_data.topics.topics[name].splitlines():
            if line.startswith("   ") or (line.strip() and set(line.strip()) <= set("*=-~^+| ")):
                continue
            lines.append(line.rstrip())
        lines.append("")
    text = "\n".join(lines)
    for fancy, plain in ASCII_LOOKALIKES.items():
        text = text.replace(fancy, plain)
    text = "".join(ch for ch in text if ch.isascii())
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


class Vocabulary:
    """Characters <-> ids: id i is the i-th character of `chars`, the sorted set of characters of a text."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        """A string -> its ids, a 1-D long tensor `(len(text),)`."""
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids):
        """Ids (a tensor or a list of ints) -> the string they spell."""
        return "".join(self.chars[i] for i in torch.as_tensor(ids).flatten().tolist())


def split(ids, validation=0.1):
    """(training ids, validation ids): the last `validation` fraction of the stream is held out, in one piece."""
    cut = int(len(ids) * (1 - validation))
    return ids[:cut], ids[cut:]


# ---------------------------------------------------------------------------------------------
# Exercise 1: the stream cut into batches that continue each other


@reference("sequential_batches")
def sequential_batches(ids, batch_size, seq_len):
    """The stream as `batch_size` contiguous rows, cut into consecutive `(batch_size, seq_len)` batches.

    ids `(n,)` long. With r = (n - 1) // batch_size, input row b is ids[b r : (b+1) r] and target row b
    is ids[b r + 1 : (b+1) r + 1], the same tokens one step later. Batch j (j < r // seq_len) is
    columns j seq_len ... (j+1) seq_len - 1 of every row, so row b of batch j + 1 continues row b of
    batch j. Returns a list of (x, y), each `(batch_size, seq_len)` long; a last, partial batch is
    dropped.
    """
    r = (len(ids) - 1) // batch_size                                # row length: one token kept for the last target
    if r < seq_len:
        return []
    inputs = ids[:batch_size * r].reshape(batch_size, r)            # (B, r): row b = ids[b r : (b+1) r]
    targets = ids[1:batch_size * r + 1].reshape(batch_size, r)      # (B, r): the same rows, one token later
    return [(inputs[:, j * seq_len:(j + 1) * seq_len], targets[:, j * seq_len:(j + 1) * seq_len])  # (B, L) each
            for j in range(r // seq_len)]


def random_batch(ids, batch_size, seq_len, generator=None):
    """`batch_size` windows of length seq_len starting at random positions: (x, y), each `(batch_size, seq_len)`."""
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)   # (B,)
    offsets = starts[:, None] + torch.arange(seq_len)[None, :]                           # (B, L)
    return ids[offsets], ids[offsets + 1]


# ---------------------------------------------------------------------------------------------
# Exercise 2: perplexity


@reference("perplexity")
def perplexity(logits, targets):
    """exp(-(1/N) sum_i log softmax(logits_i)[targets_i]): the exponential of the mean cross-entropy.

    logits `(N, V)` or `(B, T, V)`, targets `(N,)` or `(B, T)` long; N = B T positions in all. A float.
    """
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)                                    # (N, V): every position in one list
    log_probs = flat - flat.logsumexp(dim=-1, keepdim=True)         # (N, V): log softmax, safe for large logits
    nll = -log_probs.gather(1, targets.reshape(-1, 1))              # (N, 1): -log P(the true next token)
    return math.exp(nll.mean().item())


def unigram_log_probs(train_ids, vocab_size):
    """log P(x) `(V,)` from the character counts of `train_ids`; every count starts at 1 (add-one smoothing)."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1          # (V,)
    return (counts / counts.sum()).log().float()


def bigram_log_probs(train_ids, vocab_size):
    """log P(next | current) `(V, V)`, row = the current character, from the pair counts of `train_ids` (add-one)."""
    pairs = train_ids[:-1] * vocab_size + train_ids[1:]                            # one number per (current, next)
    counts = torch.bincount(pairs, minlength=vocab_size ** 2).reshape(vocab_size, vocab_size).double() + 1
    return (counts / counts.sum(dim=1, keepdim=True)).log().float()                # each row sums to 1 in p


# ---------------------------------------------------------------------------------------------
# Exercise 3: sampling with a temperature and top-k


def sampling_distribution(logits, temperature=1.0, top_k=None):
    """The probabilities `sample_next` draws from: softmax(logits / temperature) over the top_k largest logits.

    logits `(V,)` -> `(V,)` float64, zero outside the top_k (ties with the k-th largest logit are kept).
    """
    scaled = logits.double() / temperature                           # (V,)
    if top_k is not None:
        kth_largest = scaled.topk(top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth_largest, float("-inf"))   # exp(-inf) = 0: never drawn
    return torch.softmax(scaled, dim=-1)


@reference("sample_next")
def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    """One token id drawn from softmax(logits / temperature), restricted to the top_k largest logits.

    logits `(V,)`, temperature > 0, top_k None (all tokens) or 1 ... V (1: the argmax); the draw uses
    only `generator` (the global random state when None). Returns a Python int.
    """
    probs = sampling_distribution(logits, temperature, top_k)        # (V,) float64
    return int(torch.multinomial(probs, 1, generator=generator))


sample_next.distribution = sampling_distribution  # what the statistical check compares draws with


# ---------------------------------------------------------------------------------------------
# Models with one interface: model(ids (B, T), state=None) -> (logits (B, T, V), state)


class RecurrentLM(nn.Module):
    """Embedding -> one recurrent layer (nn.RNN with tanh, nn.LSTM or nn.GRU) -> linear read-out to logits.

    RecurrentLM(kind, vocab_size, embedding_dim=32, hidden_size=128); forward(ids `(B, T)` long, state=None)
    -> (logits `(B, T, vocab_size)`, state), state as the torch module returns it (`(1, B, H)`, or a pair
    of them for the LSTM); passing it back in continues the sequence.
    """
    KINDS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
    stateful = True

    def __init__(self, kind, vocab_size, embedding_dim=32, hidden_size=128):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = self.KINDS[kind](embedding_dim, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        x = self.embedding(ids)                                      # (B, T, E): one learned vector per id
        out, state = self.rnn(x, state)                              # (B, T, H)
        return self.readout(out), state                              # (B, T, V)


class TransformerLM(nn.Module):
    """`attention.TinyCausalTransformer` behind the same interface; it keeps no state (state is always None).

    TransformerLM(vocab_size, d_model=64, num_heads=4, num_layers=2, max_len=64): each forward pass sees
    only the ids it is given, at most max_len of them.
    """
    stateful = False

    def __init__(self, vocab_size, d_model=64, num_heads=4, num_layers=2, max_len=64):
        super().__init__()
        self.kind = "transformer"
        self.max_len = max_len
        self.net = TinyCausalTransformer(vocab_size, d_model, num_heads, num_layers, max_len)

    def forward(self, ids, state=None):
        return self.net(ids), None                                   # (B, T, V)


def detach(state):
    """The same state cut off from the graph of the batch that produced it (truncated BPTT's boundary)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ---------------------------------------------------------------------------------------------
# Training and evaluation


def under_autograder():
    """True while nbgrader runs the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def budget(full, graded):
    """`full`, or `graded` (something much smaller) while the autograder runs the notebook."""
    return graded if under_autograder() else full


def forward_batches(model, batches, stateful=True):
    """Run `model` over a list of (x, y) batches without gradients; state carried across batches if `stateful`.

    Returns (logits `(n_batches, B, L, V)`, targets `(n_batches, B, L)`).
    """
    model.eval()
    state, all_logits = None, []
    with torch.no_grad(), single_thread():
        for x, _ in batches:
            logits, state = model(x, state if stateful else None)    # (B, L, V)
            all_logits.append(logits)
    model.train()
    return torch.stack(all_logits), torch.stack([y for _, y in batches])


def evaluate(model, batches, perplexity_fn=None, stateful=True):
    """The perplexity of `model` on a list of sequential (x, y) batches, state carried across them if `stateful`."""
    logits, targets = forward_batches(model, batches, stateful)
    return (perplexity_fn or perplexity)(logits.flatten(0, 1), targets.flatten(0, 1))   # (n B, L, V), (n B, L)


def position_losses(model, batches, stateful=True):
    """Mean cross-entropy at each position 0 ... L-1 of the windows, over every batch and row: `(L,)`."""
    logits, targets = forward_batches(model, batches, stateful)                          # (n, B, L, V)
    nll = -logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]                # (n, B, L)
    return nll.mean(dim=(0, 1))


def train_language_model(model, batches, val_batches, steps, lr=1e-2, clip=1.0, random_from=None, seed=0,
                         evaluate_every=None, report_every=None, name=None, perplexity_fn=None):
    """Train `model` with Adam on next-token cross-entropy, clipping the global gradient norm at `clip`.

    batches: the sequential (x, y) training batches, used in order and cyclically; a stateful model
    carries its state from one batch to the next, detached at every boundary (truncated BPTT), and
    starts from a zero state whenever the cycle starts again. random_from: instead, a stream of ids
    from which every step draws random windows of the same shape, each from a zero state.
    Validation perplexity on `val_batches` (state carried) is measured every `evaluate_every` steps
    and at the end, with `perplexity_fn` (default: the reference). Returns a dict: "step", "loss"
    (every step), "val step", "val perplexity", "clipped" (fraction of steps whose gradient norm
    exceeded `clip`), "seconds" (training time) and "parameters".
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    name = name or model.kind
    evaluate_every = evaluate_every or max(steps // 6, 1)
    report_every = report_every or evaluate_every
    history = {"step": [], "loss": [], "val step": [], "val perplexity": [], "clipped": 0.0, "seconds": 0.0,
               "parameters": count_parameters(model)}
    state, clipped, seconds = None, 0, 0.0
    B, L = batches[0][0].shape
    for step in range(1, steps + 1):
        start = time.perf_counter()
        with single_thread():
            if random_from is not None:
                (x, y), state = random_batch(random_from, B, L, generator), None
            else:
                x, y = batches[(step - 1) % len(batches)]
                state = None if (step - 1) % len(batches) == 0 else detach(state)
            logits, state = model(x, state if model.stateful else None)    # (B, L, V)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        seconds += time.perf_counter() - start
        clipped += int(norm > clip)
        history["step"].append(step)
        history["loss"].append(loss.item())
        if step % evaluate_every == 0 or step == steps:
            history["val step"].append(step)
            history["val perplexity"].append(evaluate(model, val_batches, perplexity_fn))
        if step % report_every == 0 or step == steps:
            val = f", validation perplexity {history['val perplexity'][-1]:.2f}" \
                if history["val step"] and history["val step"][-1] == step else ""
            print(f"  {name:>11} step {step:>4}: loss {loss.item():.3f}{val}, clipped {clipped / step:.0%} "
                  f"of steps, {seconds:.1f} s")
    history["clipped"], history["seconds"] = clipped / steps, seconds
    return history


# ---------------------------------------------------------------------------------------------
# Generation


def next_logits(model, ids, state=None):
    """The logits `(V,)` for the token after `ids` `(T,)`, and the state to continue from (recurrent models)."""
    if not model.stateful:
        ids = ids[-model.max_len:]                                   # the transformer's context window
    logits, state = model(ids[None], state)                          # (1, T, V)
    return logits[0, -1], state


def generate(model, vocab, prompt, length, temperature=1.0, top_k=None, generator=None, sampler=None):
    """`prompt` followed by `length` characters drawn one at a time with `sampler` (default: sample_next)."""
    sampler = sampler or sample_next
    model.eval()
    ids = vocab.encode(prompt)                                       # (P,)
    with torch.no_grad(), single_thread():
        logits, state = next_logits(model, ids)
        for _ in range(length):
            next_id = sampler(logits, temperature, top_k, generator)
            ids = torch.cat([ids, torch.tensor([next_id])])
            if model.stateful:                                       # feed only the new token, with the state
                logits, state = next_logits(model, ids[-1:], state)
            else:                                                    # re-read the window that ends with it
                logits, _ = next_logits(model, ids)
    model.train()
    return vocab.decode(ids)
