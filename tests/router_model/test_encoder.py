"""The int8 encoder the router serves with stays close to the fp32 model it approximates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from router_model.encoder import Encoder
from router_model.router import Router

PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Which gas do plants take in from the air to make food? A) oxygen B) nitrogen C) carbon dioxide D) helium",
    "The trophy doesn't fit into the brown suitcase because _ is too large. Option 1: trophy Option 2: suitcase",
    "Summarise the causes of the French Revolution in three sentences.",
]


def test_int8_embeddings_match_fp32_direction(router: Router) -> None:
    assert router.encoder.precision == "int8"
    fp32 = Encoder(router.encoder.max_tokens, precision="fp32")
    a, b = fp32.encode(PROMPTS), router.encoder.encode(PROMPTS)
    assert a.shape == b.shape == (len(PROMPTS), 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.97, cosine
    # nearest neighbours agree: each int8 vector is closest to its own fp32 vector
    assert (np.argmax(b @ a.T, axis=1) == np.arange(len(PROMPTS))).all()


def test_a_texts_vector_does_not_depend_on_its_batch(router: Router) -> None:
    together = router.encoder.encode(PROMPTS)
    alone = np.concatenate([router.encoder.encode([p]) for p in PROMPTS])
    np.testing.assert_array_equal(together, alone)


def test_router_version_names_the_encoder_runtime_and_window(router: Router) -> None:
    assert router.version == f"{router.checkpoint.version}+int8-fused-ln+tail32"


def test_the_served_window_keeps_the_end_of_a_long_question(router: Router) -> None:
    question = "Which answer is right? A) red B) blue C) green D) yellow"
    long_prompt = " ".join(["Some background that does not decide the answer."] * 40) + " " + question
    window = router.encoder.max_tokens
    assert window == 32 and router.encoder.count_tokens(long_prompt) > 4 * window
    # the last 30 tokens (32 with the two special tokens) carry the vector: the background in front changes nothing
    counter = router.encoder._counter
    tail = str(counter.decode(counter.encode(long_prompt, add_special_tokens=False).ids[-(window - 2) :]))
    np.testing.assert_allclose(router.encoder.encode([long_prompt]), router.encoder.encode([tail]), atol=1e-5)


def test_a_long_text_is_tokenised_from_its_tail_into_the_same_window(router: Router) -> None:
    encoder = router.encoder
    texts = [
        " ".join(f"word{i}, (punctuation!) and ünïcödé" for i in range(800)),
        "x" * 5000 + " the end of a text with one space",
        "no-whitespace-" * 900,
        "short question?",
    ]
    for text in texts:
        tail = encoder.tail(text)
        assert text.endswith(tail)
        full, kept = (encoder._window.encode(t).ids for t in (text, tail))
        assert full == kept
    assert len(encoder.tail(texts[0])) < len(texts[0]) // 10  # the shortcut is taken where it can be


def test_the_window_holds_the_tokens_transformers_gave_the_network_in_training(router: Router) -> None:
    """The network learned from vectors of text tokenised by transformers' tokenizer (sentence-transformers, then
    left truncation); the encoder runs the same tokenizer.json with `tokenizers` and must cut and pad alike."""
    from transformers import AutoTokenizer

    from router_model.encoder import extracted_weights

    reference = AutoTokenizer.from_pretrained(str(extracted_weights()), truncation_side="left")
    encoder = router.encoder
    texts = [
        *PROMPTS,
        "Ça va? naïve café ﬁ",
        "中文 和 日本語の テキスト",
        "",
        "x" * 300,
        " ".join(f"item{i}" for i in range(80)),
    ]
    expected = reference(texts, padding=True, truncation=True, max_length=encoder.max_tokens)
    got = encoder._tokenize(texts)
    assert [e.ids for e in got] == expected["input_ids"]
    assert [e.attention_mask for e in got] == expected["attention_mask"]
    assert [e.type_ids for e in got] == expected["token_type_ids"]
    for text in texts:  # one text alone takes another call (`encode`, not `encode_batch`), and is not padded
        (alone,) = encoder._tokenize([text])
        one = reference(text, truncation=True, max_length=encoder.max_tokens)
        assert alone.ids == one["input_ids"]
        assert alone.attention_mask == one["attention_mask"]
        assert alone.type_ids == one["token_type_ids"]
    assert [encoder.count_tokens(t) for t in texts] == [
        len(reference(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts
    ]


def test_counting_a_long_text_does_not_warn_about_the_models_length_limit(router: Router, capfd, caplog) -> None:
    """The tail search counts tokens beyond the model's 512; transformers' tokenizer printed, once per tokenizer,
    that such a sequence "will result in indexing errors" (a plain line in the gateway's JSON logs)."""
    encoder = Encoder(router.encoder.max_tokens, precision="int8")  # its own tokenizers: a warning would be new
    long_text = " ".join(f"word{i}" for i in range(3000))
    assert encoder.count_tokens(long_text) > 512
    encoder.encode([long_text])
    printed = capfd.readouterr()
    assert "sequence length" not in printed.err + printed.out
    assert "sequence length" not in caplog.text


def test_concurrent_encodes_give_the_vectors_one_at_a_time_gives(router: Router) -> None:
    """The gateway scores cache misses in several threads at once. transformers' tokenizer kept its truncation
    setting as state, which a long text's tail search changed, so threads encoded some texts untruncated; the
    encoder's tokenizers now keep one setting each."""
    texts = [f"word{i} " * (5 + (i * 37) % 400) for i in range(40)]
    alone = [router.encoder.encode([t])[0] for t in texts]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            together = list(pool.map(lambda t: router.encoder.encode([t])[0], texts))
            assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_vectors_do_not_depend_on_the_scoring_thread_count(router: Router) -> None:
    """A gateway encodes a miss scored alone on every scoring thread and one scored beside others on one thread
    (`narrow`); a vector cached either way, or by a gateway with another thread count, must be the same vector."""
    one = Encoder(router.encoder.max_tokens, precision="int8", threads=1)
    two = Encoder(router.encoder.max_tokens, precision="int8", threads=2)
    texts = [*PROMPTS, "word " * 300]
    expected = one.encode(texts)
    np.testing.assert_array_equal(expected, two.encode(texts))
    np.testing.assert_array_equal(expected, two.encode(texts, narrow=True))
