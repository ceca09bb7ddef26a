"""CLIP's byte-level BPE tokenizer and ``tokenize`` (ids identical to OpenAI's).

Text is cleaned (ftfy, HTML unescape, whitespace collapse, lower case), split
with CLIP's regex, mapped byte-by-byte to printable unicode characters, and
merged with the BPE merges shipped in ``bpe_simple_vocab_16e6.txt.gz``.
"""
import functools
import gzip
import html
from pathlib import Path

import ftfy
import regex
import torch

VOCAB_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
NUM_MERGES = 49152 - 256 - 2
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
WORD_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def byte_to_unicode():
    """Reversible map from the 256 byte values to printable unicode characters.

    Printable latin-1 bytes map to themselves; the others (controls, space...)
    are shifted to code points 256 and up, so BPE never sees whitespace bytes.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    shifted = 256
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(shifted)
            shifted += 1
    return mapping


def clean_text(text):
    """Repair mojibake, undo (double) HTML escaping, collapse whitespace, lower-case."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class SimpleTokenizer:
    """Text <-> BPE token ids with CLIP's 49,408-entry vocabulary."""

    def __init__(self, vocab_path=VOCAB_FILE):
        with gzip.open(vocab_path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")[1 : NUM_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        symbols = list(byte_to_unicode().values())
        vocab = symbols + [s + END_OF_WORD for s in symbols] + ["".join(m) for m in merges]
        vocab += [START_OF_TEXT, END_OF_TEXT]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.merge_ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.byte_encoder = byte_to_unicode()
        self.byte_decoder = {char: byte for byte, char in self.byte_encoder.items()}
        self.sot_token = self.encoder[START_OF_TEXT]
        self.eot_token = self.encoder[END_OF_TEXT]
        self._cache = {START_OF_TEXT: [START_OF_TEXT], END_OF_TEXT: [END_OF_TEXT]}

    def _bpe(self, word):
        """Split one pre-tokenised word (already byte-mapped) into BPE symbols."""
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + END_OF_WORD]
        while len(parts) > 1:
            ranked = [(self.merge_ranks.get(pair, NUM_MERGES), i) for i, pair in enumerate(zip(parts, parts[1:]))]
            best_rank, position = min(ranked)
            if best_rank == NUM_MERGES:
                break
            parts = _merge_pair(parts, (parts[position], parts[position + 1]))
        self._cache[word] = parts
        return parts

    def encode(self, text):
        ids = []
        for word in WORD_PATTERN.findall(clean_text(text)):
            mapped = "".join(self.byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self._bpe(mapped))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[int(i)] for i in ids)
        data = bytearray(self.byte_decoder[c] for c in text)
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ")


def _merge_pair(parts, pair):
    """Replace every non-overlapping left-to-right occurrence of ``pair`` by its concatenation."""
    merged, i = [], 0
    while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
            merged.append(parts[i] + parts[i + 1])
            i += 2
        else:
            merged.append(parts[i])
            i += 1
    return merged


@functools.lru_cache(maxsize=1)
def get_tokenizer():
    """The shared tokenizer (reading the vocabulary takes about a second)."""
    return SimpleTokenizer()


def tokenize(texts, context_length=77, truncate=False):
    """Texts -> ``N x context_length`` LongTensor: SOT, BPE ids, EOT, zero padding.

    Too-long texts raise unless ``truncate``; truncated rows end with EOT.
    """
    if isinstance(texts, str):
        texts = [texts]
    tokenizer = get_tokenizer()
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [tokenizer.sot_token] + tokenizer.encode(text) + [tokenizer.eot_token]
        if len(ids) > context_length:
            if not truncate:
                raise ValueError(
                    f"text {row} has {len(ids)} tokens (with SOT/EOT), more than the context length "
                    f"{context_length}: {text[:60]!r}...; shorten it or pass truncate=True"
                )
            ids = ids[:context_length]
            ids[-1] = tokenizer.eot_token
        result[row, : len(ids)] = torch.tensor(ids)
    return result
