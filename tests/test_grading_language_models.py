"""The notebook-05 grading checks: right answers pass however written, wrong ones fail with the right message."""
import io
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograde.recheck import plain
from course_utils import language_models as lm
from course_utils.checks import language_models as checks
from course_utils.grading import EXERCISES, _cases, judge
from grading_helpers import passes_everything, wrong_variant_tests

IDS = ["sequential_batches", "perplexity", "sample_next"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_logic_passes(exercise_id):
    passes_everything(EXERCISES[exercise_id].reference.__wrapped__, exercise_id)


# ---------------------------------------------------------------------------------------------
# Correct implementations in other styles


def batches_loops(ids, batch_size, seq_len):
    """Python lists, one batch, row and column at a time."""
    values = ids.tolist()
    r = (len(values) - 1) // batch_size
    batches = []
    for start in range(0, (r // seq_len) * seq_len, seq_len):
        x = [values[b * r + start:b * r + start + seq_len] for b in range(batch_size)]
        y = [values[b * r + start + 1:b * r + start + seq_len + 1] for b in range(batch_size)]
        batches.append((torch.tensor(x, dtype=torch.long), torch.tensor(y, dtype=torch.long)))
    return batches


def batches_numpy(ids, batch_size, seq_len):
    stream = ids.numpy()
    r = (len(stream) - 1) // batch_size
    x = stream[:batch_size * r].reshape(batch_size, r)
    y = stream[1:batch_size * r + 1].reshape(batch_size, r)
    pieces = zip(np.split(x[:, :r // seq_len * seq_len], r // seq_len, axis=1),
                 np.split(y[:, :r // seq_len * seq_len], r // seq_len, axis=1)) if r // seq_len else []
    return [(torch.from_numpy(a.copy()), torch.from_numpy(b.copy())) for a, b in pieces]


def batches_unfold(ids, batch_size, seq_len):
    """Windows of length r + 1 (rows with their extra target), then torch.split along the columns."""
    r = (len(ids) - 1) // batch_size
    if r // seq_len == 0:
        return []
    rows = torch.stack([ids[b * r:b * r + r + 1] for b in range(batch_size)])        # (B, r + 1)
    usable = r // seq_len * seq_len
    xs = rows[:, :usable].split(seq_len, dim=1)
    ys = rows[:, 1:usable + 1].split(seq_len, dim=1)
    return list(zip(xs, ys))


def perplexity_nll(logits, targets):
    log_probs = F.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    return math.exp(F.nll_loss(log_probs, targets.reshape(-1)).item())


def perplexity_numpy(logits, targets):
    z = logits.double().numpy().reshape(-1, logits.shape[-1])
    t = targets.numpy().reshape(-1)
    top = z.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.exp(np.mean(log_z - z[np.arange(len(t)), t])))


def perplexity_categorical(logits, targets):
    distribution = torch.distributions.Categorical(logits=logits)
    return torch.exp(-distribution.log_prob(targets).mean()).item()


def perplexity_transposed(logits, targets):
    """F.cross_entropy with the classes moved to dim 1, as it accepts for (B, V, T)."""
    if logits.dim() == 3:
        return math.exp(F.cross_entropy(logits.transpose(1, 2), targets).item())
    return math.exp(F.cross_entropy(logits, targets).item())


def restricted(logits, temperature, top_k):
    scaled = logits / temperature
    if top_k is not None:
        blocked = torch.tensor(-math.inf, dtype=scaled.dtype)
        scaled = torch.where(scaled >= scaled.topk(top_k).values[-1], scaled, blocked)
    return torch.softmax(scaled, dim=-1)


def sample_inverse_cdf(logits, temperature=1.0, top_k=None, generator=None):
    """One uniform number from the generator, then the first index whose cumulative probability exceeds it."""
    cdf = restricted(logits, temperature, top_k).double().cumsum(0)
    u = torch.rand((), generator=generator, dtype=torch.float64) * cdf[-1]
    return min(int(torch.searchsorted(cdf, u, right=True)), len(cdf) - 1)


def sample_gumbel(logits, temperature=1.0, top_k=None, generator=None):
    """Gumbel-max: argmax of log p + Gumbel noise is a draw from p."""
    log_p = torch.log(restricted(logits.double(), temperature, top_k))
    u = torch.rand(log_p.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    return int(torch.argmax(log_p - torch.log(-torch.log(u))))


def sample_sorted(logits, temperature=1.0, top_k=None, generator=None):
    """Sort once, keep the first k, draw among them, map back to the original index."""
    values, order = torch.sort(logits, descending=True)
    k = top_k or len(values)
    probs = torch.softmax(values[:k] / temperature, dim=0)
    return order[torch.multinomial(probs, 1, generator=generator)].item()


def sample_numpy(logits, temperature=1.0, top_k=None, generator=None):
    """numpy's sampler, seeded from the torch generator (so a seeded generator still fixes the draws)."""
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
    p = restricted(logits.double(), temperature, top_k).numpy()
    return int(np.random.default_rng(seed).choice(len(p), p=p / p.sum()))


def sample_python_loop(logits, temperature=1.0, top_k=None, generator=None):
    u = torch.rand((), generator=generator).item()
    total = 0.0
    probs = restricted(logits.double(), temperature, top_k).tolist()
    for i, p in enumerate(probs):
        total += p
        if u < total:
            return i
    return max(i for i, p in enumerate(probs) if p > 0)


CORRECT = [("sequential_batches", batches_loops), ("sequential_batches", batches_numpy),
           ("sequential_batches", batches_unfold),
           ("perplexity", perplexity_nll), ("perplexity", perplexity_numpy), ("perplexity", perplexity_categorical),
           ("perplexity", perplexity_transposed),
           ("sample_next", sample_inverse_cdf), ("sample_next", sample_gumbel), ("sample_next", sample_sorted),
           ("sample_next", sample_numpy), ("sample_next", sample_python_loop)]


@pytest.mark.parametrize("exercise_id, fn", CORRECT, ids=[f"{e}-{fn.__name__}" for e, fn in CORRECT])
def test_other_correct_implementations_pass(exercise_id, fn):
    passes_everything(fn, exercise_id)


# ---------------------------------------------------------------------------------------------
# Wrong implementations


def batches_with(shift=1, interleave=False, chunks=False, row_length=None, keep_partial=False, time_major=False,
                 as_float=False):
    def fn(ids, batch_size, seq_len):
        n = len(ids)
        r = row_length(n, batch_size) if row_length else (n - 1) // batch_size
        if chunks:
            out = []
            for start in range(0, n - batch_size * seq_len, batch_size * seq_len):
                block = ids[start:start + batch_size * seq_len + 1]
                out.append((block[:-1].view(batch_size, seq_len), block[1:].view(batch_size, seq_len)))
            return out
        stop = r if keep_partial else r // seq_len * seq_len
        if interleave:
            x = ids[:batch_size * r].view(r, batch_size).T
            y = ids[shift:batch_size * r + shift].view(r, batch_size).T
            out = [(x[:, s:s + seq_len], y[:, s:s + seq_len]) for s in range(0, stop, seq_len)]
        else:                                                    # batch by batch, row by row
            def rows(s, shift):
                return torch.stack([ids[b * r + s + shift:b * r + min(s + seq_len, r) + shift]
                                    for b in range(batch_size)])
            out = [(rows(s, 0), rows(s, shift)) for s in range(0, stop, seq_len)]
        if time_major:
            out = [(a.T, b.T) for a, b in out]
        if as_float:
            out = [(a.float(), b.float()) for a, b in out]
        return out
    return fn


def batches_shifted_inside_rows(ids, batch_size, seq_len):
    """Rows of n // batch_size tokens, each shifted inside itself: x = row[:-1], y = row[1:]."""
    m = len(ids) // batch_size
    rows = ids[:batch_size * m].reshape(batch_size, m)
    x, y = rows[:, :-1], rows[:, 1:]
    return [(x[:, s:s + seq_len], y[:, s:s + seq_len]) for s in range(0, (m - 1) // seq_len * seq_len, seq_len)]


def char_rnn_get_batches(ids, batch_size, seq_len):
    """The classic recipe: trim to a multiple of batch_size * seq_len, wrap the last target around."""
    arr = ids[:len(ids) // (batch_size * seq_len) * batch_size * seq_len].reshape(batch_size, -1)
    out = []
    for n in range(0, arr.shape[1], seq_len):
        x = arr[:, n:n + seq_len]
        y = torch.zeros_like(x)
        y[:, :-1] = x[:, 1:]
        y[:, -1] = arr[:, n + seq_len] if n + seq_len < arr.shape[1] else arr[:, 0]
        out.append((x, y))
    return out


def ppl_with(reduce="mean", exp=math.exp, base=None, axis=-1, shift=False, sign=1):
    def fn(logits, targets):
        if shift:
            logits, targets = (logits[:, :-1], targets[:, 1:]) if logits.dim() == 3 else (logits[:-1], targets[1:])
        log_p = torch.log_softmax(logits, dim=axis).gather(-1, targets[..., None])[..., 0]
        if base == 2:
            log_p = log_p / math.log(2)
        nll = -sign * log_p
        if reduce == "sum":
            return exp(nll.sum().item())
        if reduce == "none":
            return nll.mean().item()
        if reduce == "exp-then-mean":
            return nll.exp().mean().item()
        return exp(nll.mean().item())
    return fn


def sampler(multiply=False, use_temperature=True, smallest=False, use_top_k=True, extra=0, greedy=False,
            uniform=False, use_generator=True, as_tensor=False, in_place=False):
    def fn(logits, temperature=1.0, top_k=None, generator=None):
        if in_place:
            logits /= temperature
            scaled = logits
        elif not use_temperature:
            scaled = logits.clone()
        else:
            scaled = logits * temperature if multiply else logits / temperature
        if top_k is not None and use_top_k:
            k = min(top_k + extra, len(scaled))
            keep = scaled.topk(k, largest=not smallest).indices
            mask = torch.full_like(scaled, -math.inf)
            mask[keep] = 0.0
            scaled = scaled + mask
        probs = torch.softmax(scaled, dim=-1)
        if greedy:
            return int(probs.argmax())
        if uniform:
            probs = (probs > 0).double()
        draw = torch.multinomial(probs, 1, generator=generator if use_generator else None)
        return draw if as_tensor else int(draw)
    return fn


def sample_with_fresh_generator(logits, temperature=1.0, top_k=None, generator=None):
    """A new generator at every call: the same 'random' token every time."""
    return sampler()(logits, temperature, top_k, torch.Generator().manual_seed(0))


WRONG = {
    "sequential_batches": [
        (batches_with(shift=0), "the targets are the inputs shifted by one token"),
        (batches_with(interleave=True), "each row must be a contiguous stretch of the stream"),
        (batches_with(chunks=True), "consecutive batches must continue each row"),
        (batches_with(row_length=lambda n, B: n // B), "one token must be kept back"),
        (batches_with(keep_partial=True), "a last, shorter batch is dropped"),
        (batches_with(time_major=True), "batch first"),
        (batches_with(as_float=True), "keep torch.long"),
        (lambda ids, B, L: [(y, x) for x, y in lm.sequential_batches.__wrapped__(ids, B, L)], "inputs first"),
        (char_rnn_get_batches, "classic char-RNN recipe"),
        (batches_shifted_inside_rows, "shifting inside each row"),
        (lambda ids, B, L: lm.sequential_batches(ids, B, L), "course's reference"),
    ],
    "perplexity": [
        (ppl_with(reduce="sum"), "the mean, not the sum"),
        (ppl_with(reduce="none"), "the perplexity is its exponential"),
        (ppl_with(exp=lambda v: 2 ** v), "2 ** H is the perplexity only when H is measured in bits"),
        (ppl_with(base=2), "you measured the cross-entropy in bits (log2) and then took exp"),
        (ppl_with(sign=-1), "without the minus sign"),
        (ppl_with(reduce="exp-then-mean"), "not the mean of the per-position perplexities"),
        (ppl_with(axis=0), "yours runs over dim 0"),
        (ppl_with(axis=1), "runs over time here"),
        (ppl_with(shift=True), "without shifting again"),
        (lambda logits, targets: math.exp(F.cross_entropy(logits, targets).item()), "Expected target size"),
        (lambda logits, targets: lm.perplexity(logits, targets), "course's reference"),
    ],
    "sample_next": [
        (sampler(multiply=True), "You multiplied"),
        (sampler(use_temperature=False), "the temperature had no effect"),
        (sampler(smallest=True), "yours kept the smallest"),
        (sampler(use_top_k=False), "top_k was ignored"),
        (sampler(extra=1), "you kept one token too many"),
        (sampler(uniform=True), "not equal chances"),
        (sampler(greedy=True), "always returning the most likely token"),
        (sampler(use_generator=False), "two generators seeded alike"),
        (sampler(as_tensor=True), "should return a Python int"),
        (sampler(in_place=True), "changed its input tensors in place"),
        (sample_with_fresh_generator, "frequencies that do not match"),
        (lambda logits, temperature=1.0, top_k=None, generator=None: lm.sample_next(logits, temperature, top_k,
                                                                                   generator), "course's reference"),
    ],
}


test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation = \
    wrong_variant_tests(IDS, WRONG)


def test_an_unfinished_exercise_says_so():
    def stub(logits, temperature=1.0, top_k=None, generator=None):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError, match="not written yet"):
        passes_everything(stub, "sample_next")


# ---------------------------------------------------------------------------------------------
# The statistical check of sample_next


def all_cases(exercise_id):
    exercise = EXERCISES[exercise_id]
    return [(name, args) for part in exercise.parts for hidden in (False, True)
            for name, args in _cases(exercise, part, hidden, 0)]


def test_every_wrong_sampler_variant_is_exposed_by_a_wide_margin():
    """Each variant puts real mass where the reference puts none, or differs by L1 >= 0.5 (4x the threshold)."""
    for variant in EXERCISES["sample_next"].variants:
        if variant.fn.convert is not int or not variant.fn.uses_generator:
            continue                                                 # the type / reproducibility variants
        margins = []
        for name, (logits, temperature, top_k, _) in all_cases("sample_next"):
            p = lm.sampling_distribution(logits, temperature, top_k)
            q = variant.fn.distribution(logits, temperature, top_k)
            outside = q[p == 0].sum().item()
            margins.append(max(outside * checks.draws(top_k) / 50, (p - q).abs().sum().item() / 0.5))
        assert max(margins) >= 1, variant.message


def test_collected_data_survives_the_recheck_round_trip():
    """collect's output, reduced by recheck.plain and read back with weights_only=True, is judged the same."""
    exercise = EXERCISES["sample_next"]
    for name, args in all_cases("sample_next")[:4]:
        data = exercise.collect(lm.sample_next.__wrapped__, args)
        buffer = io.BytesIO()
        torch.save({"case": ("ok", plain(data))}, buffer)
        buffer.seek(0)
        _, loaded = torch.load(buffer, weights_only=True)["case"]
        assert judge(exercise, args, loaded) is None, name


def test_malformed_collected_data_is_rejected_not_crashing():
    exercise = EXERCISES["sample_next"]
    name, args = all_cases("sample_next")[0]
    good = exercise.collect(lm.sample_next.__wrapped__, args)
    for bad in [None, [], {"draws": good["draws"]}, dict(good, draws=good["draws"][:10]),
                dict(good, draws=good["draws"].float()), dict(good, kinds="int"),
                dict(good, draws=torch.full_like(good["draws"], 99))]:
        message = judge(exercise, args, bad)
        assert message, bad


def test_a_wrong_sampler_is_diagnosed_quickly():
    """Failing one case and matching it against every variant (the hints) takes well under a second."""
    exercise = EXERCISES["sample_next"]
    name, args = all_cases("sample_next")[1]                        # temperature 2
    data = exercise.collect(sampler(multiply=True), args)
    start = time.perf_counter()
    matched = [v for v in exercise.variants if judge(exercise, args, data, v.fn) is None]
    assert time.perf_counter() - start < 2.0
    assert [v.message for v in matched] == [exercise.variants[0].message]


def test_visible_and_hidden_checks_of_a_correct_sampler_are_fast():
    start = time.perf_counter()
    passes_everything(sample_inverse_cdf, "sample_next")
    assert time.perf_counter() - start < 10.0
