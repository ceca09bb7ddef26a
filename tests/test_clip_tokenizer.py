"""CLIP tokenizer: same ids as open_clip's independent implementation, truncation, errors."""
import random

import open_clip
import pytest
import torch

import clip
from clip.tokenizer import get_tokenizer

WORDS = [
    "a", "photo", "of", "the", "Dog", "CAT", "café", "naïve", "Ærøskøbing", "straße", "jalapeño", "São Paulo",
    "东京", "北京烤鸭", "こんにちは", "한국어", "Привет", "مرحبا", "שלום", "ελληνικά",
    "😀", "🐕‍🦺", "👍🏽", "🇫🇷", "42", "3.14159", "1,000,000", "2nd", "-7", "½", "x²",
    "#hashtag", "@user", "e-mail", "don't", "we'll", "it's", "I'M", "they've", "you'd",
    "<b>bold</b>", "&amp;", "&lt;tag&gt;", "&amp;amp;", "http://x.org/a?b=1",
    "!!!", "...", "?!", "(parenthesis)", "[bracket]", "{brace}", "\"quoted\"", "'single'", "—dash—",
    "tab\there", "new\nline", "  spaced  ", "ﬁne", "Ａｂｃ", "naÃ¯ve", "a_b_c", "snake_case",
    "CamelCaseWord", "antidisestablishmentarianism", "ZZZZZZZZ", "$5", "100%", "©", "™", "°C", "μm",
]


def varied_texts(count=300, seed=0):
    """Deterministic mix of scripts, punctuation, numbers, emoji, HTML and whitespace."""
    rng = random.Random(seed)
    texts = ["", " ", "a photo of a dog.", "A PHOTO OF A DOG."]
    for _ in range(count):
        texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
    texts.append(" ".join(rng.choice(WORDS) for _ in range(200)))
    return texts


def test_ids_match_open_clip_tokenizer():
    texts = varied_texts()
    ours = clip.tokenize(texts, truncate=True)
    reference = open_clip.tokenize(texts)
    mismatched = [t for t, a, b in zip(texts, ours, reference) if not torch.equal(a, b)]
    assert not mismatched, f"{len(mismatched)} texts differ, e.g. {mismatched[:3]}"


def test_known_ids_and_layout():
    ids = clip.tokenize(["a photo of a dog.", ""], context_length=12)
    assert ids.dtype == torch.long and ids.shape == (2, 12)
    assert ids[0].tolist() == [49406, 320, 1125, 539, 320, 1929, 269, 49407, 0, 0, 0, 0]
    assert ids[1].tolist()[:3] == [49406, 49407, 0]
    assert torch.equal(clip.tokenize("a photo of a dog."), clip.tokenize(["a photo of a dog."]))


def test_literal_special_tokens_follow_openai_not_open_clip():
    """OpenAI's tokenizer (which CoOp used) maps the literal strings to SOT/EOT;
    open_clip 3.x renamed its special tokens, so it is not the reference here."""
    ids = clip.tokenize(["a <|startoftext|> b <|endoftext|>"], context_length=8)
    assert ids[0].tolist() == [49406, 320, 49406, 321, 49407, 49407, 0, 0]


def test_too_long_text_needs_truncate():
    long_text = "word " * 100
    with pytest.raises(ValueError, match=r"text 0 has 102 tokens .* more than the context length 77.*truncate=True"):
        clip.tokenize([long_text])
    ids = clip.tokenize([long_text], truncate=True)
    assert ids.shape == (1, 77)
    assert ids[0, 0] == 49406 and ids[0, -1] == 49407 and (ids[0, 1:-1] != 0).all()


def test_decode_inverts_encode_after_cleaning():
    tokenizer = get_tokenizer()
    text = "Café &amp; crème brûlée,  costs 5€!"
    assert tokenizer.decode(tokenizer.encode(text)).replace(" ", "") == "café&crèmebrûlée,costs5€!"
