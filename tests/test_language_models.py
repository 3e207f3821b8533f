"""The notebook-05 references and demos against oracles: the contract's formulas, F.cross_entropy, counting, torch."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import language_models as lm
from course_utils import lstm
from course_utils.checks import language_models as checks

DTYPES = [torch.float32, torch.float64]


# ---------------------------------------------------------------------------------------------
# Corpus and vocabulary


@pytest.fixture(scope="module")
def corpus():
    text = lm.load_corpus()
    return text, lm.Vocabulary(text)


def test_corpus_is_plain_prose_and_the_same_every_time(corpus):
    text, _ = corpus
    assert text == lm.load_corpus()
    assert len(text) > 100_000 and text.isascii()
    assert 'The "if" statement' in text
    lines = text.splitlines()
    assert not any(line.startswith("   ") for line in lines), "code samples are dropped"
    assert "\n\n\n" not in text


def test_vocabulary_round_trip_and_ids(corpus):
    text, vocab = corpus
    assert vocab.chars == sorted(set(text)) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text and vocab.decode(ids.tolist()[:50]) == text[:50]
    assert all(vocab.chars[i] == ch for i, ch in zip(vocab.encode("Python").tolist(), "Python"))


def test_split_keeps_the_end_in_one_piece():
    ids = torch.arange(1000)
    train, val = lm.split(ids, 0.1)
    assert torch.equal(torch.cat([train, val]), ids) and len(val) == 100


# ---------------------------------------------------------------------------------------------
# sequential_batches against the contract's formula, element by element


def contract_batches(ids, batch_size, seq_len):
    """Literal transcription of CURRICULUM.md, with Python lists."""
    values, n = ids.tolist(), len(ids)
    r = (n - 1) // batch_size
    out = []
    for j in range(r // seq_len):
        x = [[values[b * r + j * seq_len + t] for t in range(seq_len)] for b in range(batch_size)]
        y = [[values[b * r + 1 + j * seq_len + t] for t in range(seq_len)] for b in range(batch_size)]
        out.append((torch.tensor(x, dtype=torch.long).reshape(batch_size, seq_len),
                    torch.tensor(y, dtype=torch.long).reshape(batch_size, seq_len)))
    return out


@pytest.mark.parametrize("n, batch_size, seq_len", [(25, 2, 4), (29, 3, 4), (101, 4, 5), (24, 3, 3), (19, 3, 1),
                                                   (41, 5, 8), (10, 3, 4), (1, 1, 1), (2, 1, 1), (500, 7, 9)])
def test_sequential_batches_follow_the_contract(n, batch_size, seq_len):
    ids = torch.randint(0, 1000, (n,), generator=torch.Generator().manual_seed(n))
    before = ids.clone()
    got = lm.sequential_batches(ids, batch_size, seq_len)
    expected = contract_batches(ids, batch_size, seq_len)
    assert isinstance(got, list) and len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert x.dtype == y.dtype == torch.long
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert torch.equal(ids, before)


def test_consecutive_batches_continue_every_row():
    batches = lm.sequential_batches(torch.arange(1001), 8, 10)
    for (x, y), (next_x, _) in zip(batches, batches[1:]):
        assert torch.equal(y, x + 1)                                  # ids 0..n-1: the target is the next id
        assert torch.equal(next_x[:, 0], x[:, -1] + 1)               # row b resumes where it stopped


def test_random_batch_windows_are_shifted_by_one():
    ids = torch.arange(500)
    x, y = lm.random_batch(ids, 16, 20, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (16, 20)
    assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], x[:, :-1] + 1)
    assert int(y.max()) < 500


# ---------------------------------------------------------------------------------------------
# perplexity against F.cross_entropy and closed forms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5), (1, 3), (2, 6, 11), (3, 1, 4)])
def test_perplexity_is_exp_of_torch_cross_entropy(dtype, shape):
    g = torch.Generator().manual_seed(sum(shape))
    logits = torch.randn(*shape, generator=g, dtype=dtype) * 2
    targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
    expected = math.exp(F.cross_entropy(logits.reshape(-1, shape[-1]).double(), targets.reshape(-1)).item())
    got = lm.perplexity(logits, targets)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-5)


def test_perplexity_bounds_and_stability():
    targets = torch.randint(0, 9, (4, 5))
    assert lm.perplexity(torch.zeros(4, 5, 9), targets) == pytest.approx(9.0)          # uniform: V
    assert lm.perplexity(40 * F.one_hot(targets, 9).double(), targets) == pytest.approx(1.0)
    wrong = 5 * F.one_hot((targets + 1) % 9, 9).double()
    assert lm.perplexity(wrong, targets) == pytest.approx(math.exp(5) + 8)              # 1 / p with p = 1/(e^5+8)
    big = torch.randn(3, 4, 6, dtype=torch.float64) + 800
    small_targets = torch.randint(0, 6, (3, 4))
    assert lm.perplexity(big, small_targets) == pytest.approx(lm.perplexity(big - 800, small_targets))


def test_count_models_are_normalised_counts():
    train = torch.tensor([0, 1, 1, 2, 0, 1])
    unigram = lm.unigram_log_probs(train, 4).exp()
    torch.testing.assert_close(unigram, torch.tensor([3, 4, 2, 1]) / 10.0)                # counts + 1 over 6 + 4
    bigram = lm.bigram_log_probs(train, 4).exp()
    torch.testing.assert_close(bigram.sum(1), torch.ones(4))
    pairs = np.ones((4, 4))
    for a, b in zip(train[:-1].tolist(), train[1:].tolist()):
        pairs[a, b] += 1
    torch.testing.assert_close(bigram, torch.from_numpy(pairs / pairs.sum(1, keepdims=True)).float())


# ---------------------------------------------------------------------------------------------
# Sampling


def sorted_oracle(logits, temperature, top_k):
    """softmax over the top_k after sorting, written back in place: an independent route to the distribution."""
    values, order = torch.sort(logits.double() / temperature, descending=True)
    k = top_k or len(values)
    probs = torch.zeros_like(values)
    probs[order[:k]] = torch.softmax(values[:k], dim=0)
    return probs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (3.0, 2), (0.8, 1), (1.2, 7)])
def test_sampling_distribution(dtype, temperature, top_k):
    logits = torch.randn(7, generator=torch.Generator().manual_seed(3), dtype=dtype)
    probs = lm.sampling_distribution(logits, temperature, top_k)
    torch.testing.assert_close(probs, sorted_oracle(logits, temperature, top_k), rtol=1e-7, atol=1e-10)
    if top_k is None:
        torch.testing.assert_close(probs, torch.softmax(logits.double() / temperature, 0))
    assert int((probs > 0).sum()) == (top_k or 7)


def test_sample_next_argmax_reproducibility_and_type():
    logits = torch.tensor([0.3, 2.0, -1.0, 1.5])
    assert all(lm.sample_next(logits, t, 1) == 1 for t in (0.1, 1.0, 10.0))
    first = [lm.sample_next(logits, 1.0, None, torch.Generator().manual_seed(5)) for _ in range(1)]
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = [lm.sample_next(logits, 1.3, 3, g1) for _ in range(50)]
    b = [lm.sample_next(logits, 1.3, 3, g2) for _ in range(50)]
    assert a == b and all(type(v) is int for v in a + first) and 2 not in a


def test_sample_next_frequencies_match_the_distribution():
    logits = torch.tensor([1.0, 0.2, -0.5, 2.0, 0.0])
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([lm.sample_next(logits, 0.7, 4, g) for _ in range(4000)])
    frequencies = torch.bincount(draws, minlength=5).double() / 4000
    probs = sorted_oracle(logits, 0.7, 4)
    assert (frequencies - probs).abs().sum() < checks.allowed_distance(probs, 4000)


def test_the_statistical_threshold_is_conservative():
    """Over 2,000 simulated correct runs per case, no run comes near the threshold."""
    g = torch.Generator().manual_seed(0)
    for p in [torch.full((6,), 1 / 6, dtype=torch.float64), torch.tensor([0.7, 0.2, 0.05, 0.05], dtype=torch.float64),
              torch.softmax(torch.randn(50, generator=g, dtype=torch.float64) * 2, 0)]:
        n = checks.DRAWS
        draws = torch.multinomial(p, 2000 * n, replacement=True, generator=g).reshape(2000, n)
        frequencies = F.one_hot(draws, len(p)).double().mean(1)                           # (2000, V)
        distances = (frequencies - p).abs().sum(1)
        assert distances.max() < 0.75 * checks.allowed_distance(p, n)


# ---------------------------------------------------------------------------------------------
# Models, training, evaluation, generation


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_state_continues_the_sequence(kind):
    torch.manual_seed(0)
    model = lm.RecurrentLM(kind, 11, embedding_dim=5, hidden_size=7)
    ids = torch.randint(0, 11, (3, 10))
    whole, _ = model(ids)
    first, state = model(ids[:, :6])
    second, _ = model(ids[:, 6:], state)
    assert whole.shape == (3, 10, 11)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    detached = lm.detach(state)
    assert not any(s.requires_grad for s in (detached if isinstance(detached, tuple) else (detached,)))


def test_transformer_lm_is_causal():
    torch.manual_seed(0)
    model = lm.TransformerLM(9, d_model=16, num_heads=2, num_layers=1, max_len=12)
    ids = torch.randint(0, 9, (2, 12))
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 9
    logits, state = model(ids)
    assert state is None and logits.shape == (2, 12, 9)
    torch.testing.assert_close(model(changed)[0][:, :8], logits[:, :8])


def test_evaluate_equals_cross_entropy_with_the_state_carried():
    torch.manual_seed(0)
    model = lm.RecurrentLM("GRU", 13, embedding_dim=4, hidden_size=6)
    ids = torch.randint(0, 13, (300,))
    batches = lm.sequential_batches(ids, 4, 9)
    state, losses = None, []
    with torch.no_grad():
        for x, y in batches:
            logits, state = model(x, state)
            losses.append(F.cross_entropy(logits.reshape(-1, 13), y.reshape(-1), reduction="sum"))
    expected = math.exp(sum(losses).item() / (len(batches) * 4 * 9))
    assert lm.evaluate(model, batches) == pytest.approx(expected, rel=1e-5)
    fresh = lm.position_losses(model, batches, stateful=False)
    assert fresh.shape == (9,)


def test_training_lowers_the_loss_on_a_repetitive_text(capsys):
    vocab = lm.Vocabulary("abcd ")
    ids = vocab.encode("abcd " * 400)
    batches = lm.sequential_batches(ids, 4, 16)
    for model in (lm.RecurrentLM("LSTM", len(vocab), 8, 16), lm.TransformerLM(len(vocab), 16, 2, 1, 16)):
        torch.manual_seed(0)
        history = lm.train_language_model(model, batches, batches[:2], 40, lr=1e-2, report_every=20)
        assert history["val perplexity"][-1] < 1.5 < history["val perplexity"][0] * 2
        assert 0 <= history["clipped"] <= 1 and len(history["loss"]) == 40
    random = lm.train_language_model(lm.RecurrentLM("RNN", len(vocab), 8, 16), batches, batches[:2], 10,
                                     random_from=ids, report_every=10)
    assert len(random["loss"]) == 10
    assert "step   20" in capsys.readouterr().out


def test_generation_is_reproducible_and_greedy_with_top_k_1():
    vocab = lm.Vocabulary("abcde ")
    torch.manual_seed(0)
    for model in (lm.RecurrentLM("LSTM", 6, 4, 8), lm.TransformerLM(6, 8, 2, 1, 8)):
        a = lm.generate(model, vocab, "ab", 20, 1.0, None, torch.Generator().manual_seed(3))
        b = lm.generate(model, vocab, "ab", 20, 1.0, None, torch.Generator().manual_seed(3))
        assert a == b and a.startswith("ab") and len(a) == 22
        greedy = lm.generate(model, vocab, "ab", 12, 1.0, 1)
        ids = vocab.encode("ab")
        with torch.no_grad():                                   # greedy by re-reading the whole prefix every time
            for _ in range(12):
                logits, _ = model(ids[None][:, -8:] if not model.stateful else ids[None])
                ids = torch.cat([ids, logits[0, -1].argmax()[None]])
        assert greedy == vocab.decode(ids)


def test_nn_lstm_weights_reproduce_with_the_course_lstm():
    torch.manual_seed(0)
    model = lm.RecurrentLM("LSTM", 10, 6, 5)
    ids = torch.randint(0, 10, (2, 7))
    with torch.no_grad():
        inputs = model.embedding(ids)
        theirs, _ = model.rnn(inputs)
        zeros = torch.zeros(2, 5)
        ours, _ = lstm.lstm_forward(inputs, (zeros, zeros), model.rnn.weight_ih_l0, model.rnn.weight_hh_l0,
                                    model.rnn.bias_ih_l0, model.rnn.bias_hh_l0)
    torch.testing.assert_close(ours, theirs)


def test_budget_shrinks_under_the_autograder(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert lm.budget(150, 5) == 150
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert lm.budget(150, 5) == 5


def test_embedding_is_one_hot_times_the_matrix():
    embedding = nn.Embedding(12, 4)
    ids = torch.tensor([3, 0, 11, 3])
    torch.testing.assert_close(F.one_hot(ids, 12).float() @ embedding.weight, embedding(ids))
