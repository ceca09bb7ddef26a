"""Class names must fit, inside their prompt, in CLIP's 77-token context.

`clip.tokenize` refuses a too-long text with an index and a tokenizer hint;
here the class is named, with where its name comes from, before the text
tower sees it. `tools/check_datasets.py` reports the same names up front.
"""
import clip
from clip.tokenizer import get_tokenizer
from dassl.utils.errors import ClassNameTooLongError

CONTEXT_LENGTH = 77
DEFAULT_CONTEXT_TOKENS = 16  # CoOp's N_CTX: the prompt budget tools/check_datasets.py assumes


def token_count(text):
    """BPE tokens of `text`, without the start and end tokens."""
    return len(get_tokenizer().encode(text))


def longest_name_tokens(prefix_tokens):
    """Most tokens a class name may have after `prefix_tokens` context tokens (plus SOT, '.', EOT)."""
    return CONTEXT_LENGTH - prefix_tokens - 3


def too_long_message(name, prompt_tokens):
    return (
        f"Class name {name!r} is {token_count(name)} CLIP tokens, and its prompt {prompt_tokens} (with the start and "
        f"end tokens); CLIP reads at most {CONTEXT_LENGTH}. Shorten that class name where the dataset names it "
        "(own-folder dataset: a line \"<folder> <short name>\" in its classnames.txt; other datasets: the class "
        "name in its split file) and run again"
    )


def tokenize_class_prompts(prompts, classnames):
    """`clip.tokenize(prompts)` (one prompt per class); a prompt over 77 tokens names its class."""
    for prompt, name in zip(prompts, classnames):
        prompt_tokens = token_count(prompt) + 2
        if prompt_tokens > CONTEXT_LENGTH:
            raise ClassNameTooLongError(too_long_message(name, prompt_tokens))
    return clip.tokenize(prompts)
