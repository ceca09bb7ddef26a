"""``from clip.simple_tokenizer import SimpleTokenizer``: OpenAI's module path for the BPE tokenizer."""
from .tokenizer import SimpleTokenizer

__all__ = ["SimpleTokenizer"]
