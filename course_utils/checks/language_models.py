"""Cases and known mistakes for notebook 05 (language models).

`sequential_batches` and `perplexity` are compared with the reference as usual. `sample_next` is
random, so it is checked statistically, with a collect/judge pair:

* collect (runs beside the student's code): with a generator seeded with the case's seed, draw
  `draws(top_k)` tokens (3,000; 200 when top_k = 1), then `REPEATS` more from a second generator
  seeded alike; record the draws and the Python type of every value returned. A case without a seed
  draws with generator=None from the global random state, seeded inside `torch.random.fork_rng`.
* judge (trusted): for a sampler `fn` (the reference, or a wrong variant when looking for a hint),
  the data must show (1) the type `fn` returns (an int), (2) only tokens that `fn` can draw (for
  top_k = 1 that is exactly the argmax), (3) reproducibility exactly when `fn` is reproducible, and
  (4) frequencies within an L1 distance `allowed_distance(p, n)` of the probabilities p of
  `fn.distribution(logits, temperature, top_k)`.

False failures. A correct sampler, whatever way it consumes the generator (torch.multinomial, an
inverse CDF with torch.rand, Gumbel-max, ...), passes (1)-(3) always. For (4), treat its n draws as
independent draws from p, with empirical frequencies p_hat. Changing one draw moves
||p_hat - p||_1 by at most 2/n, so McDiarmid's inequality gives
P(||p_hat - p||_1 >= E||p_hat - p||_1 + eps) <= exp(-n eps^2 / 2), and
E||p_hat - p||_1 <= sum_i sqrt(p_i (1 - p_i) / n) (Jensen). The threshold is that bound on the mean
plus eps = sqrt(2 ln(1 / FALSE_FAILURE) / n), so each case fails a correct sampler with probability
at most FALSE_FAILURE = 1e-9: at most 1.1e-8 over the 11 cases (both parts) in which more than one
token can be drawn (n = 3,000: eps = 0.118, thresholds 0.136 to 0.161). The cases are fixed, so a
given correct implementation passes or fails deterministically; the bound is over implementations,
each of which consumes the generator its own way.

Power. Every wrong variant with a distribution of its own either draws tokens that the reference
never draws (50 or more such draws expected in some case, so it escapes (2) with probability below
e^-50) or differs from the reference by an L1 distance of at least 0.5 in some case
(tests/test_grading_language_models.py checks both). A sampler of such a q passes that case only if
||p_hat - q||_1 >= 0.5 - 0.161; with E||p_hat - q||_1 <= sqrt(49 / 3000) = 0.128 (at most 50
tokens), the same inequality bounds that by exp(-3000 * 0.21^2 / 2) < 1e-28. Hints: a variant's own data passes
the judge of that variant with probability >= 1 - FALSE_FAILURE, and judging a failed case against
all nine variants calls each one about 80 times (a few milliseconds).
"""
import math

import torch

from .. import language_models as ref
from ..grading import Exercise, Variant, register
from .fc_local_conv import F32, F64, randint, randn

LONG = torch.long


# ---------------------------------------------------------------------------------------------
# sequential_batches


def _describe_batches(args):
    ids, batch_size, seq_len = args
    n = len(ids)
    r = (n - 1) // batch_size
    values = ids.tolist()
    shown = ", ".join(map(str, values if n <= 6 else values[:3] + ["..."] + values[-1:]))
    return (f"ids ({n},) {str(ids.dtype).replace('torch.', '')} [{shown}], batch_size={batch_size}, seq_len={seq_len}; "
            f"so r = (n - 1) // batch_size = {r} and r // seq_len = {max(r, 0) // seq_len} batches")


def _batches_case(n, batch_size, seq_len, positions=False):
    """ids 0, 1, ..., n-1 (positions=True, readable in messages) or random token ids from 0..999."""
    def build(g):
        ids = torch.arange(n) if positions else torch.randint(0, 1000, (n,), generator=g)
        return ids, batch_size, seq_len
    return build


def _batches_random(g, dtype):
    B, L = randint(g, 1, 6), randint(g, 1, 8)
    n = randint(g, B * L + 1, B * L * 5 + B)
    return torch.randint(0, 1000, (n,), generator=g), B, L


def _rows_variant(row_length=lambda n, B, L: (n - 1) // B, shift=1, layout="rows", keep_partial=False,
                  transpose=False, dtype=None, swap=False):
    """A wrong sequential_batches: rows of `row_length`, targets `shift` tokens later, one choice changed.

    layout "rows": row b of the stream matrix is ids[b r : (b+1) r] (right); "interleaved": row b is
    ids[b], ids[b + B], ...; "chunks": batch j is the next B L tokens of the stream, reshaped.
    """
    def variant(ids, batch_size, seq_len):
        n, B, L = len(ids), batch_size, seq_len
        r = row_length(n, B, L)
        if layout == "chunks":
            widths = [L] * ((n - 1) // (B * L))
        else:
            widths = [L] * (r // L) + ([r % L] if keep_partial and r % L else [])
        batches = []
        for j, width in enumerate(widths):
            b, c = torch.arange(B)[:, None], torch.arange(j * L, j * L + width)[None, :]   # (B, 1), (1, width)
            if layout == "rows":
                positions = b * r + c
            elif layout == "interleaved":
                positions = c * B + b
            else:
                positions = j * B * L + b * L + (c - j * L)
            x, y = ids[positions], ids[positions + shift]                                   # (B, width) each
            if transpose:
                x, y = x.T, y.T
            if dtype is not None:
                x, y = x.to(dtype), y.to(dtype)
            batches.append((y, x) if swap else (x, y))
        return batches
    return variant


def _within_rows(ids, batch_size, seq_len):
    """Rows of n // batch_size tokens, each shifted inside itself: x = row[:-1], y = row[1:]."""
    m = len(ids) // batch_size
    rows = ids[:batch_size * m].reshape(batch_size, m)                        # (B, m)
    return [(rows[:, s:s + seq_len], rows[:, s + 1:s + seq_len + 1])
            for s in range(0, (m - 1) // seq_len * seq_len, seq_len)]


def _trimmed_recipe(ids, batch_size, seq_len):
    """The classic char-RNN `get_batches`: trim to a multiple of batch_size * seq_len, last target wraps around."""
    n_batches = len(ids) // (batch_size * seq_len)
    rows = ids[:n_batches * batch_size * seq_len].reshape(batch_size, -1)     # (B, n_batches L)
    batches = []
    for start in range(0, rows.shape[1], seq_len):
        x = rows[:, start:start + seq_len]
        y = torch.zeros_like(x)
        y[:, :-1] = x[:, 1:]
        y[:, -1] = rows[:, start + seq_len] if start + seq_len < rows.shape[1] else rows[:, 0]
        batches.append((x, y))
    return batches


register(Exercise(
    id="sequential_batches",
    cases={
        "n = 25 (ids 0..24), batch_size 2, seq_len 4": _batches_case(25, 2, 4, positions=True),
        "n = 101, batch_size 4, seq_len 5": _batches_case(101, 4, 5),
        "n = 64, batch_size 3, seq_len 6 (a partial batch to drop)": _batches_case(64, 3, 6),
        "n = 500, batch_size 8, seq_len 10": _batches_case(500, 8, 10),
        "batch_size 1: one long row": _batches_case(40, 1, 7),
        "n = 30 (ids 0..29), batch_size 4, seq_len 3: leftovers at the end": _batches_case(30, 4, 3, positions=True),
        "n a multiple of batch_size (n = 24, batch_size 3, seq_len 3)": _batches_case(24, 3, 3),
        "seq_len 1": _batches_case(19, 3, 1),
        "seq_len = r: exactly one batch": _batches_case(41, 5, 8),
        "too short for one batch: no batches at all": _batches_case(10, 3, 4),
        "a single token: nothing to predict": _batches_case(1, 1, 1),
        "n = 1 + batch_size * seq_len: one batch, no leftovers": _batches_case(61, 6, 10),
    },
    parts={
        "basic": {"visible": ["n = 25 (ids 0..24), batch_size 2, seq_len 4"],
                  "hidden": ["n = 101, batch_size 4, seq_len 5",
                             "n = 64, batch_size 3, seq_len 6 (a partial batch to drop)",
                             "n = 500, batch_size 8, seq_len 10", "batch_size 1: one long row"], "random": 4},
        "edge": {"visible": ["n = 30 (ids 0..29), batch_size 4, seq_len 3: leftovers at the end"],
                 "hidden": ["n a multiple of batch_size (n = 24, batch_size 3, seq_len 3)", "seq_len 1",
                            "seq_len = r: exactly one batch", "too short for one batch: no batches at all",
                            "a single token: nothing to predict",
                            "n = 1 + batch_size * seq_len: one batch, no leftovers"],
                 "random": 4},
    },
    random_case=_batches_random,
    describe=_describe_batches,
    variants=[
        Variant(_rows_variant(shift=0), "the targets are the inputs shifted by one token: y row b is "
                                        "ids[b*r + 1 : (b+1)*r + 1], so that y[:, t] is the token after x[:, t]."),
        Variant(_rows_variant(layout="interleaved"),
                "each row must be a contiguous stretch of the stream, ids[b*r : (b+1)*r]; yours takes every "
                "batch_size-th token (reshape (r, batch_size) and transpose), so neighbouring tokens land in "
                "different rows."),
        Variant(_rows_variant(layout="chunks"),
                "consecutive batches must continue each row (row b of batch j + 1 starts where row b of batch j "
                "ended), so that the state can be carried over; yours cuts each batch from the next "
                "batch_size * seq_len tokens of the stream. Reshape the whole stream into rows first, then "
                "slice columns."),
        Variant(_rows_variant(row_length=lambda n, B, L: n // B),
                "the row length is r = (n - 1) // batch_size: one token must be kept back, because the last "
                "target of the last row is the token after its last input."),
        Variant(_rows_variant(keep_partial=True), "keep only full batches: there are r // seq_len of them, and "
                                                  "a last, shorter batch is dropped."),
        Variant(_rows_variant(transpose=True), "each batch is (batch_size, seq_len), batch first: yours is "
                                               "(seq_len, batch_size)."),
        Variant(_rows_variant(dtype=torch.float32), "token ids are integers: keep torch.long (nn.Embedding and "
                                                    "F.cross_entropy need long ids)."),
        Variant(_rows_variant(swap=True), "each batch is (x, y): inputs first, targets second."),
        Variant(_within_rows, "the rows continue the stream: row b starts at b*r with r = (n - 1) // batch_size, "
                              "and its targets run one token past its inputs, into the next row. Cutting the stream "
                              "into rows of n // batch_size tokens and shifting inside each row (x = row[:-1], "
                              "y = row[1:]) moves the rows and loses one target per row."),
        Variant(_trimmed_recipe, "that is the classic char-RNN recipe that trims the stream to a multiple of "
                                 "batch_size * seq_len and wraps the last target around; here rows have length "
                                 "r = (n - 1) // batch_size and every target is the true next token."),
    ],
))


# ---------------------------------------------------------------------------------------------
# perplexity


def _logits_case(shape, dtype=F32, scale=1.5, offset=0.0, uniform=False, confident=False):
    """Random logits of `shape` (..., V) and targets; uniform: all logits equal; confident: targets far ahead."""
    def build(g):
        *lead, V = shape
        targets = torch.randint(0, V, tuple(lead), generator=g)
        if uniform:
            return torch.full(shape, 0.7, dtype=dtype), targets
        logits = randn(g, *shape, dtype=F64) * scale + offset
        if confident:
            logits = logits + 12.0 * torch.nn.functional.one_hot(targets, V).to(F64)
        return logits.to(dtype), targets
    return build


def _logits_random(g, dtype):
    V = randint(g, 2, 12)
    shape = (randint(g, 1, 10), V) if randint(g, 0, 1) else (randint(g, 1, 3), randint(g, 1, 6), V)
    return _logits_case(shape, dtype)(g)


def _cross_entropies(logits, targets, axis=-1):
    """-log softmax(logits)[target] at every position, softmax over `axis`: shape of targets."""
    log_probs = torch.log_softmax(logits.double(), dim=axis)
    return -log_probs.gather(-1, targets[..., None])[..., 0]


def _ppl_variant(reduce):
    def variant(logits, targets):
        return float(reduce(_cross_entropies(logits, targets), logits, targets))
    return variant


def _shifted(logits, targets):
    """Cross-entropies with the targets moved one position further along the sequence axis."""
    if logits.dim() == 3:
        return _cross_entropies(logits[:, :-1], targets[:, 1:])
    return _cross_entropies(logits[:-1], targets[1:])


register(Exercise(
    id="perplexity",
    cases={
        "(N, V) = (8, 5)": _logits_case((8, 5)),
        "(B, T, V) = (2, 6, 7)": _logits_case((2, 6, 7)),
        "(N, V) = (20, 30), float64": _logits_case((20, 30), F64),
        "(B, T, V) = (3, 4, 10), float64": _logits_case((3, 4, 10), F64),
        "N = 1": _logits_case((1, 6)),
        "(B, T, V) = (4, 3, 3)": _logits_case((4, 3, 3), scale=0.8),
        "uniform logits: perplexity = V = 9": _logits_case((2, 5, 9), uniform=True),
        "confident and right: perplexity close to 1": _logits_case((2, 4, 6), confident=True),
        "logits near 100, float32 (exp overflows)": _logits_case((3, 5, 8), offset=100.0),
        "logits near 800, float64 (exp overflows)": _logits_case((6, 7), F64, offset=800.0),
        "B = 1, T = 1": _logits_case((1, 1, 5)),
        "V = 1: one possible token, perplexity 1": _logits_case((2, 3, 1)),
    },
    parts={
        "basic": {"visible": ["(N, V) = (8, 5)", "(B, T, V) = (2, 6, 7)"],
                  "hidden": ["(N, V) = (20, 30), float64", "(B, T, V) = (3, 4, 10), float64", "N = 1",
                             "(B, T, V) = (4, 3, 3)"], "random": 4},
        "edge": {"visible": ["uniform logits: perplexity = V = 9"],
                 "hidden": ["confident and right: perplexity close to 1", "logits near 100, float32 (exp overflows)",
                            "logits near 800, float64 (exp overflows)", "B = 1, T = 1",
                            "V = 1: one possible token, perplexity 1"], "random": 4},
    },
    random_case=_logits_random,
    variants=[
        Variant(_ppl_variant(lambda ce, lo, ta: ce.sum().exp()),
                "average the cross-entropy over the positions before taking exp (the mean, not the sum): the "
                "perplexity of a text must not grow with its length."),
        Variant(_ppl_variant(lambda ce, lo, ta: ce.mean()),
                "that is the mean cross-entropy; the perplexity is its exponential, exp(mean cross-entropy)."),
        Variant(_ppl_variant(lambda ce, lo, ta: 2 ** ce.mean()),
                "the cross-entropy computed with the natural log (as F.cross_entropy does) is in nats: take "
                "exp of it. 2 ** H is the perplexity only when H is measured in bits (log2)."),
        Variant(_ppl_variant(lambda ce, lo, ta: (ce / math.log(2)).mean().exp()),
                "you measured the cross-entropy in bits (log2) and then took exp: use one base for both "
                "(natural log with exp, or log2 with 2 **)."),
        Variant(_ppl_variant(lambda ce, lo, ta: (-ce).mean().exp()),
                "the cross-entropy is the mean of -log p(target): without the minus sign you get "
                "1 / perplexity, a number below 1."),
        Variant(_ppl_variant(lambda ce, lo, ta: ce.exp().mean()),
                "take exp of the mean cross-entropy, not the mean of the per-position perplexities exp(-log p) "
                "(by Jensen's inequality that average is larger)."),
        Variant(lambda logits, targets: float(_cross_entropies(logits, targets, axis=0).mean().exp()),
                "the softmax runs over the vocabulary, the last axis (dim=-1), so that each position's "
                "probabilities sum to 1; yours runs over dim 0."),
        Variant(lambda logits, targets: float(_cross_entropies(logits, targets, axis=1).mean().exp()),
                "for (B, T, V) logits the vocabulary is the last axis: a softmax over dim=1, right for "
                "(N, V), runs over time here. Use dim=-1, or reshape to (B*T, V) first."),
        Variant(lambda logits, targets: float(_shifted(logits, targets).mean().exp()),
                "targets[..., t] is already the token that follows input t (the batches did the shift): "
                "compare logits[..., t, :] with targets[..., t], without shifting again."),
    ],
))


# ---------------------------------------------------------------------------------------------
# sample_next: checked statistically (collect on the student's side, judge in the trusted grader)

DRAWS, EXACT_DRAWS, REPEATS = 3000, 200, 40
FALSE_FAILURE = 1e-9      # the largest probability that one case fails a correct sampler
GLOBAL_SEED = 2024        # for the case without a generator: torch.manual_seed inside torch.random.fork_rng


def draws(top_k):
    """How many tokens collect draws for one case: few when top_k = 1 (every draw must be the argmax)."""
    return EXACT_DRAWS if top_k == 1 else DRAWS


def allowed_distance(p, n):
    """The L1 distance between n draws' frequencies and p that a correct sampler exceeds with prob <= FALSE_FAILURE."""
    mean_bound = (p * (1 - p) / n).sqrt().sum().item()
    return mean_bound + math.sqrt(2 * math.log(1 / FALSE_FAILURE) / n)


def _kind(value):
    if type(value) is int:
        return "int"
    kind = type(value).__name__
    if isinstance(value, torch.Tensor):
        kind += f" {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    return kind


def _index(value):
    """The value as a token index when it can be read as one (int, 0-d/1-element tensor, numpy int), else -1."""
    try:
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            return -1
        number = value.item() if hasattr(value, "item") else value
        return int(number) if float(number) == int(number) else -1
    except Exception:
        return -1


def _draw(fn, args, count, generator):
    logits, temperature, top_k, _ = args
    if generator is None:
        return [fn(logits, temperature, top_k) for _ in range(count)]
    return [fn(logits, temperature, top_k, generator) for _ in range(count)]


def collect_samples(fn, args):
    """Run on the student's side: the draws of one case, as plain data (see the module docstring)."""
    logits, temperature, top_k, seed = args
    if seed is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(GLOBAL_SEED)
            values, again = _draw(fn, args, draws(top_k), None), []
    else:
        values = _draw(fn, args, draws(top_k), torch.Generator().manual_seed(seed))
        again = _draw(fn, args, REPEATS, torch.Generator().manual_seed(seed))
    return {"kinds": sorted({_kind(v) for v in values + again}),
            "draws": torch.tensor([_index(v) for v in values], dtype=LONG),
            "again": torch.tensor([_index(v) for v in again], dtype=LONG)}


def _behaviour(fn, args):
    """What `fn` does on this case: (kinds it returns, whether equal seeds give equal draws, probabilities)."""
    logits, temperature, top_k, seed = args
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(GLOBAL_SEED + 1)
        if seed is None:
            kinds, reproducible = {_kind(fn(logits, temperature, top_k))}, None
        else:
            first = _draw(fn, args, REPEATS, torch.Generator().manual_seed(seed))
            second = _draw(fn, args, REPEATS, torch.Generator().manual_seed(seed))
            kinds = {_kind(v) for v in first + second}
            reproducible = [_index(v) for v in first] == [_index(v) for v in second]
    return sorted(kinds), reproducible, fn.distribution(logits, temperature, top_k)


def judge_samples(args, data, fn):
    """Trusted: None when the collected `data` is what sampler `fn` would produce on this case, else why not."""
    logits, temperature, top_k, seed = args
    V = logits.shape[-1]
    if not isinstance(data, dict) or set(data) != {"kinds", "draws", "again"}:
        return "the collected draws are malformed."
    draws_, again, kinds = data["draws"], data["again"], data["kinds"]
    n = draws(top_k)
    if not (isinstance(draws_, torch.Tensor) and draws_.shape == (n,) and draws_.dtype == LONG
            and isinstance(again, torch.Tensor) and again.dtype == LONG
            and again.shape == ((REPEATS,) if seed is not None else (0,))
            and isinstance(kinds, (list, tuple)) and all(isinstance(k, str) for k in kinds)):
        return "the collected draws are malformed."
    expected_kinds, reproducible, probs = _behaviour(fn, args)
    if list(kinds) != expected_kinds:
        return (f"sample_next should return a Python int (the id of the drawn token), but it returned "
                f"{' and '.join(map(str, kinds))}: convert with int(...) or .item().")
    outside = ((draws_ < 0) | (draws_ >= V)).nonzero()
    if len(outside):
        value = draws_[outside[0, 0]].item()
        return (f"every draw must be a token id in 0 ... {V - 1}, but one draw came back as "
                f"{value if value >= 0 else 'something that is not an integer'}.")
    support = probs > 0
    impossible = ~support[draws_]
    if impossible.any():
        allowed = support.nonzero().flatten().tolist()
        token = draws_[impossible][0].item()
        count = int((draws_ == token).sum())
        if top_k == 1:
            return (f"with top_k = 1 the answer is always the argmax, token {allowed[0]}; yours returned "
                    f"token {token} in {count} of {n} draws.")
        return (f"token {token} was drawn {count} times in {n} draws, but with top_k = {top_k} only the "
                f"{len(allowed)} largest logits may be drawn: tokens {allowed}.")
    if seed is not None:
        repeated = torch.equal(again, draws_[:REPEATS])
        if reproducible and not repeated:
            return (f"two generators seeded alike ({seed}) gave different draws: {draws_[:8].tolist()} and "
                    f"{again[:8].tolist()}. Draw only with `generator` (pass generator=generator to "
                    f"torch.multinomial, torch.rand, ...), never from the global random state.")
        if repeated and not reproducible:
            return "the draws were reproducible with a seeded generator, while this sampler's are not."
    frequencies = torch.bincount(draws_, minlength=V).double() / n
    distance = (frequencies - probs).abs().sum().item()
    allowed = allowed_distance(probs, n)
    if distance > allowed:
        shown = probs.argsort(descending=True)[:8].tolist()
        table = ", ".join(f"{i}: {probs[i].item():.3f} vs {frequencies[i].item():.3f}" for i in sorted(shown))
        return (f"in {n} draws the tokens came up with frequencies that do not match softmax(logits / "
                f"temperature) restricted to the top_k: the L1 distance between frequencies and "
                f"probabilities is {distance:.3f}, while a correct sampler stays below {allowed:.3f} (with "
                f"probability 1 - {FALSE_FAILURE:g}). Token: probability vs your frequency: {table}.")
    return None


def _sample_case(V, temperature, top_k, seed=7, scale=1.5, offset=0.0, dtype=F32):
    """Random logits (V,) with distinct values; args (logits, temperature, top_k, seed of the generator)."""
    def build(g):
        logits = (randn(g, V, dtype=F64) * scale + offset).to(dtype)
        return logits, temperature, top_k, seed
    return build


def _describe_sample(args):
    logits, temperature, top_k, seed = args
    values = logits.tolist()
    shown = [round(v, 3) for v in values] if len(values) <= 10 else f"({len(values)},)"
    generator = f"a generator seeded with {seed}" if seed is not None else "generator=None (the global random state)"
    return (f"logits {shown} {str(logits.dtype).replace('torch.', '')}, temperature={temperature}, top_k={top_k}, "
            f"{draws(top_k)} draws with {generator}")


class Sampler:
    """A sampler with known behaviour, used as a wrong variant: draws from `distribution`, returns via `convert`."""

    def __init__(self, distribution, convert=int, uses_generator=True):
        self.distribution, self.convert, self.uses_generator = distribution, convert, uses_generator

    def __call__(self, logits, temperature=1.0, top_k=None, generator=None):
        probs = self.distribution(logits, temperature, top_k)
        index = torch.multinomial(probs, 1, generator=generator if self.uses_generator else None)[0]
        return self.convert(index)


_exact = ref.sampling_distribution


def _restricted(logits, keep):
    """Softmax of `logits` (float64) over the indices where `keep` is True."""
    return torch.softmax(logits.double().masked_fill(~keep, float("-inf")), dim=-1)


def _top(logits, k, largest=True):
    keep = torch.zeros(logits.shape[-1], dtype=torch.bool)
    keep[logits.topk(k, largest=largest).indices] = True
    return keep


def _uniform_top_k(logits, temperature, top_k):
    keep = _top(logits, top_k or logits.shape[-1])
    return keep.double() / keep.sum()


def _argmax(logits, temperature, top_k):
    return torch.nn.functional.one_hot(logits.argmax(), logits.shape[-1]).double()


register(Exercise(
    id="sample_next",
    cases={
        "V = 6, temperature 1, no top-k": _sample_case(6, 1.0, None, seed=3),
        "V = 8, temperature 2 (flatter)": _sample_case(8, 2.0, None, seed=11),
        "V = 8, temperature 0.5 (sharper)": _sample_case(8, 0.5, None, seed=5, scale=1.0),
        "V = 10, top_k = 3": _sample_case(10, 1.0, 3, seed=12),
        "float64, temperature 0.7, top_k = 4": _sample_case(9, 0.7, 4, seed=2, dtype=F64),
        "V = 5, temperature 1.5, top_k = 5 = V (no cut)": _sample_case(5, 1.5, 5, seed=8),
        "top_k = 1 is the argmax (V = 7, temperature 3)": _sample_case(7, 3.0, 1, seed=4),
        "top_k = 1, float64, V = 30": _sample_case(30, 1.0, 1, seed=9, dtype=F64),
        "temperature 0.25 (nearly greedy)": _sample_case(6, 0.25, None, seed=6, scale=0.5),
        "temperature 4, top_k = 2": _sample_case(12, 4.0, 2, seed=10),
        "logits near 1000 (exp overflows)": _sample_case(6, 1.0, 3, seed=13, offset=1000.0),
        "generator=None: draws from the global random state": _sample_case(5, 1.3, None, seed=None),
        "V = 50 negative logits, temperature 0.8, top_k = 5": _sample_case(50, 0.8, 5, seed=14, offset=-20.0),
        "a single token (V = 1)": _sample_case(1, 1.0, None, seed=15),
    },
    parts={
        "basic": {"visible": ["V = 6, temperature 1, no top-k", "V = 8, temperature 2 (flatter)"],
                  "hidden": ["V = 8, temperature 0.5 (sharper)", "V = 10, top_k = 3",
                             "float64, temperature 0.7, top_k = 4", "V = 5, temperature 1.5, top_k = 5 = V (no cut)"],
                  "random": 0},
        "edge": {"visible": ["top_k = 1 is the argmax (V = 7, temperature 3)"],
                 "hidden": ["top_k = 1, float64, V = 30", "temperature 0.25 (nearly greedy)",
                            "temperature 4, top_k = 2",
                            "logits near 1000 (exp overflows)", "generator=None: draws from the global random state",
                            "V = 50 negative logits, temperature 0.8, top_k = 5", "a single token (V = 1)"],
                 "random": 0},
    },
    describe=_describe_sample,
    collect=collect_samples,
    judge=judge_samples,
    variants=[
        Variant(Sampler(lambda lo, t, k: _exact(lo * t, 1.0, k)),
                "divide the logits by the temperature, softmax(logits / temperature): a temperature above 1 "
                "flattens the distribution, below 1 sharpens it. You multiplied (or raised the probabilities "
                "to the power temperature)."),
        Variant(Sampler(lambda lo, t, k: _exact(lo, 1.0, k)),
                "the temperature had no effect: divide the logits by it before the softmax (dividing the "
                "probabilities changes nothing once they are normalised again)."),
        Variant(Sampler(lambda lo, t, k: _restricted(lo / t, _top(lo, k or lo.shape[-1], largest=False))),
                "top-k keeps the k LARGEST logits (topk(..., largest=True), the default); yours kept the "
                "smallest."),
        Variant(Sampler(lambda lo, t, k: _exact(lo, t, None)),
                "top_k was ignored: set every logit below the k-th largest to -inf before the softmax, so that "
                "only the top_k tokens can be drawn."),
        Variant(Sampler(lambda lo, t, k: _exact(lo, t, None if k is None else min(k + 1, lo.shape[-1]))),
                "keep exactly top_k tokens: the k-th largest logit is topk(k).values[-1] (sorted[k - 1]); you "
                "kept one token too many."),
        Variant(Sampler(_uniform_top_k),
                "within the top_k the tokens keep their softmax probabilities (renormalised), not equal "
                "chances: draw from the restricted distribution, not uniformly among the top_k ids."),
        Variant(Sampler(_argmax),
                "sample_next draws at random from the distribution; always returning the most likely token "
                "(the argmax) is right only for top_k = 1."),
        Variant(Sampler(_exact, uses_generator=False),
                "the generator was ignored: draw with it (generator=generator in torch.multinomial or "
                "torch.rand), so that a seeded generator reproduces the same tokens."),
        Variant(Sampler(_exact, convert=lambda index: index),
                "return a Python int, not a tensor: int(index) or index.item()."),
    ],
))
