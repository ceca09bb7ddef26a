"""The model every prompt host shares: frozen CLIP + a learnable prompt module."""
import torch
from torch import nn

from .feature_server import EVAL_INPUT_IMAGES
from .text_encoding import encode_prompt_embeddings, normalize


class PromptedCLIP(nn.Module):
    """Frozen CLIP with a `prompt_learner` and an optional text-feature plug-in.

    Subclasses implement forward(image, labels=None, frozen_features=None):
    with labels (training) it returns (logits, loss_terms) where loss_terms
    maps names to weighted scalar tensors added to the cross-entropy by the
    trainer; without labels it returns logits. The cross-entropy stays in the
    trainer, the one place that computes it in fp32 and checks it is finite.

    `eval_image_input` (see trainers.common.feature_server) tells the trainer
    whether it may serve the frozen image features (feature cache, cached
    views); a subclass whose forward reaches the image tower only through
    `frozen_image_features` may say so, and then takes the served features
    as its `frozen_features` argument (image None when only they are served).

    Complete when built: the text-feature plug-in (`text_plugin`, or None)
    and any frozen class features are constructor arguments.

    `text_chunk` is the number of prompt sequences per text-tower pass: N > 0
    at most N, 0 (default) sized to the free memory of the prompts' device
    (trainers.common.text_encoding.text_chunk_size).
    """

    eval_image_input = EVAL_INPUT_IMAGES

    def __init__(self, clip_model, prompt_learner, text_chunk=0, text_plugin=None):
        super().__init__()
        self.clip_model = clip_model
        self.prompt_learner = prompt_learner
        self.text_plugin = text_plugin
        self.text_chunk = text_chunk
        self._evaluation_text_features = None

    @property
    def dtype(self):
        return self.clip_model.dtype

    def encode_image(self, image, training, frozen_features=None):
        """Normalised image features, plus the plug-in's extra visual outputs in training."""
        request = self.text_plugin.visual_request if self.text_plugin is not None and training else {}
        if not request:
            return self.frozen_image_features(image, frozen_features), None
        visual_output = self.clip_model.visual.forward_features(image.type(self.dtype), **request)
        return normalize(visual_output.pooled), visual_output

    def frozen_image_features(self, image, frozen_features=None):
        """rownorm(frozen image tower output): the one frozen image pass, skipped when its
        output (`frozen_features`, not normalised) is served."""
        if frozen_features is not None:
            return normalize(frozen_features)
        return normalize(self.clip_model.visual(image.type(self.dtype)))

    def encode_prompts(self, prompts, eot_indices):
        """Text features (not normalised) of prompt embeddings with leading batch dims."""
        lead = prompts.shape[:-2]
        flat_eot = eot_indices.expand(*lead).reshape(-1)
        features = encode_prompt_embeddings(
            self.clip_model, prompts.reshape(-1, *prompts.shape[-2:]), flat_eot, self.text_chunk
        )
        return features.reshape(*lead, -1)

    def learned_text_features(self):
        """Normalised text features of the learned prompts of every class.

        Outside autograd (evaluation) they depend only on the prompt learner's
        state, so they are encoded once per state rather than once per test
        batch: the key holds every tensor's version counter, which each
        optimizer step and each `load_state_dict` advances.
        """
        learner = self.prompt_learner
        if torch.is_grad_enabled():
            return normalize(self.encode_prompts(learner(), learner.eot_indices))
        key = (
            torch.is_autocast_enabled(),
            tuple((t.data_ptr(), t._version) for t in (*learner.parameters(), *learner.buffers())),
        )
        if self._evaluation_text_features is None or self._evaluation_text_features[0] != key:
            self._evaluation_text_features = (key, normalize(self.encode_prompts(learner(), learner.eot_indices)))
        return self._evaluation_text_features[1]

    def refine_text_features(self, text_features, image_features, visual_output, labels):
        """The single place where a plug-in may transform the class text features."""
        if self.text_plugin is None:
            return text_features, {}
        return self.text_plugin(text_features, image_features, visual_output, labels)

    def logits(self, image_features, text_features):
        """exp(logit_scale) * cosine similarities; text features (C, E) or per image (B, C, E)."""
        scale = self.clip_model.logit_scale.exp()
        if text_features.dim() == 2:
            return scale * image_features @ text_features.t()
        return scale * torch.einsum("be,bce->bc", image_features, text_features.type(image_features.dtype))
