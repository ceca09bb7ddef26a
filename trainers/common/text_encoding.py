"""Text features of prompt embeddings, through CLIP's own text tower."""
import torch


def encode_prompt_embeddings(clip_model, prompts, eot_indices, chunk_size=0):
    """(N, L, D) prompt embeddings -> (N, embed_dim) text features (not normalised).

    `chunk_size` > 0 runs at most that many sequences per pass, which bounds
    the transient memory of large batches (e.g. CoCoOp's B x n_cls prompts);
    the result equals a single pass.
    """
    if prompts.shape[0] != eot_indices.shape[0]:
        raise ValueError(
            f"got {prompts.shape[0]} prompts but {eot_indices.shape[0]} EOT indices; they must match one to one"
        )
    if chunk_size <= 0 or prompts.shape[0] <= chunk_size:
        return clip_model.encode_text_from_embeddings(prompts, eot_indices)
    return torch.cat(
        [
            clip_model.encode_text_from_embeddings(chunk, eot)
            for chunk, eot in zip(prompts.split(chunk_size), eot_indices.split(chunk_size))
        ]
    )


def normalize(features):
    """L2-normalise along the last dimension."""
    return features / features.norm(dim=-1, keepdim=True)
