"""PyTorch corpus: third-party architectures from Hugging Face transformers, small and randomly initialised.

Every factory builds its model from a config object with the library's own modelling code; nothing is
downloaded (no `from_pretrained`, no hub, no tokenizer). Configs are shrunk (few layers, narrow widths)
so that each model builds and runs in well under a second on a CPU. Weights come from the torch RNG
that graphmint seeds around the factory call. Where a library initialiser leaves an output near zero
(BatchNorm gammas drawn with std 0.02, say), the factory re-draws those weights from the same RNG, so
every output varies with the input and a comparison of two runtimes compares something.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

__all__ = [
    "bert",
    "convnext",
    "distilbert",
    "efficientnet",
    "gpt2",
    "llama",
    "mobilenet_v2",
    "mobilevit",
    "regnet",
    "resnet",
    "roberta",
    "segformer",
    "swin",
    "t5_encoder",
    "text_inputs",
    "vit",
    "wav2vec2",
    "whisper_encoder",
]

#: token vocabulary of every text model; corpus.toml draws ids in 0..VOCAB-1
VOCAB = 100
#: longest sequence any text model accepts (corpus.toml's seq dims stay below it)
MAX_POSITIONS = 64
#: labels of every classification head
LABELS = 10
#: the batch of 64x64 RGB images that BatchNorm statistics are measured on
_IMAGE_BATCH = (4, 3, 64, 64)


def text_inputs(shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An `attention_mask` of right-padded sequences: each row keeps 1..seq leading tokens.

    Graphmint calls this as an input generator (`generator = "graphmint.models.corpus_torch:text_inputs"`);
    the token ids themselves come from the spec's value range.
    """
    out: dict[str, np.ndarray] = {}
    if "attention_mask" in shapes:
        batch, seq = shapes["attention_mask"]
        lengths = rng.integers(1, seq, size=batch, endpoint=True)
        out["attention_mask"] = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return out


def _calibrate_batchnorm(model: nn.Module, *input_shape: int) -> nn.Module:
    """Random BatchNorm affine terms, and running statistics measured on one random batch.

    Library initialisers leave BatchNorm at mean 0, variance 1 and often a scale of one, zero
    (zero-init residual branches) or near zero (EfficientNet draws it with std `initializer_range`).
    With narrow random convolutions that makes the logits of a deep network almost constant. One
    forward pass in training mode over a batch drawn from the torch RNG gives every BatchNorm the
    statistics it would have learnt, so activations keep unit scale, the output varies with the
    input, and exporters that fold BatchNorm into convolutions fold non-trivial numbers. Only the
    BatchNorm layers are in training mode for that pass: dropout and drop-path stay off, or the
    statistics would not match what inference computes.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the statistics of exactly this batch
        model.eval()
        for m in norms:
            m.train()
        model(torch.randn(*input_shape))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


# --- vision: pixel_values [batch, 3, H, W] -------------------------------------------------------


def resnet() -> nn.Module:
    """ResNetForImageClassification: a bottleneck ResNet with two stages of one block each."""
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1], layer_type="bottleneck", num_labels=LABELS
    )
    return _calibrate_batchnorm(ResNetForImageClassification(config), *_IMAGE_BATCH)


def mobilenet_v2() -> nn.Module:
    """MobileNetV2ForImageClassification at depth multiplier 0.35 (inverted residuals, ReLU6)."""
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    config = MobileNetV2Config(depth_multiplier=0.35, image_size=64, num_labels=LABELS)
    return _calibrate_batchnorm(MobileNetV2ForImageClassification(config), *_IMAGE_BATCH)


def efficientnet() -> nn.Module:
    """EfficientNetForImageClassification scaled down (MBConv blocks with squeeze-and-excitation)."""
    from transformers import EfficientNetConfig, EfficientNetForImageClassification

    config = EfficientNetConfig(
        image_size=64, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320, num_labels=LABELS
    )
    return _calibrate_batchnorm(EfficientNetForImageClassification(config), *_IMAGE_BATCH)


def convnext() -> nn.Module:
    """ConvNextForImageClassification: two stages, depthwise 7x7 convs, LayerNorm and layer scale.

    Layer scale starts at 0.5, not 1e-6: at 1e-6 every block is the identity to six digits, and a
    wrong block would go unseen.
    """
    from transformers import ConvNextConfig, ConvNextForImageClassification

    config = ConvNextConfig(
        num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], layer_scale_init_value=0.5, num_labels=LABELS
    )
    return ConvNextForImageClassification(config).eval()


def regnet() -> nn.Module:
    """RegNetForImageClassification: RegNetY (grouped convs with squeeze-and-excitation)."""
    from transformers import RegNetConfig, RegNetForImageClassification

    config = RegNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32],
        depths=[1, 1],
        groups_width=8,
        layer_type="y",
        num_labels=LABELS,
    )
    return _calibrate_batchnorm(RegNetForImageClassification(config), *_IMAGE_BATCH)


def vit() -> nn.Module:
    """ViTForImageClassification on 32x32 images in 8x8 patches (17 tokens with [CLS])."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=LABELS,
    )
    return ViTForImageClassification(config).eval()


def segformer() -> nn.Module:
    """SegformerForSemanticSegmentation: a two-block MiT encoder and the all-MLP decoder head."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[4, 2],
        hidden_sizes=[16, 32],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=32,
        num_labels=LABELS,
    )
    return _calibrate_batchnorm(SegformerForSemanticSegmentation(config), *_IMAGE_BATCH)


def swin() -> nn.Module:
    """SwinForImageClassification on 32x32 images in 2x2 patches: windowed attention, patch merging.

    Two blocks per stage, so that the second one attends over shifted windows with the attention
    mask that shift builds (the 4x4 windows divide both the 16x16 and the 8x8 maps).
    """
    from transformers import SwinConfig, SwinForImageClassification

    config = SwinConfig(
        image_size=32,
        patch_size=2,
        embed_dim=24,
        depths=[2, 2],
        num_heads=[2, 4],
        window_size=4,
        mlp_ratio=2.0,
        drop_path_rate=0.0,
        num_labels=LABELS,
    )
    return SwinForImageClassification(config).eval()


def mobilevit() -> nn.Module:
    """MobileViTForImageClassification: inverted residuals, then MobileViT blocks that unfold the map
    into 2x2 patches for a transformer and fold it back (at 8x8, 4x4 and 2x2 on 64x64 images)."""
    from transformers import MobileViTConfig, MobileViTForImageClassification

    config = MobileViTConfig(
        image_size=64,
        hidden_sizes=[16, 24, 32],
        neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
        num_attention_heads=2,
        expand_ratio=2.0,
        num_labels=LABELS,
    )
    return _calibrate_batchnorm(MobileViTForImageClassification(config), *_IMAGE_BATCH)


# --- text: input_ids [batch, seq] (+ attention_mask) ----------------------------------------------

_ENCODER = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": MAX_POSITIONS,
}


def bert() -> nn.Module:
    """BertModel: token, position and segment embeddings, post-norm encoder, tanh pooler."""
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(**_ENCODER)).eval()


def roberta() -> nn.Module:
    """RobertaModel: BERT's encoder with position ids counted past the padding id (1)."""
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig(**{**_ENCODER, "max_position_embeddings": MAX_POSITIONS + 2})
    return RobertaModel(config).eval()


def distilbert() -> nn.Module:
    """DistilBertModel: a six-layer BERT distilled, here two layers."""
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=MAX_POSITIONS
    )
    return DistilBertModel(config).eval()


def t5_encoder() -> nn.Module:
    """T5EncoderModel: RMSNorm pre-norm encoder with bucketed relative position bias."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, use_cache=False
    )
    return T5EncoderModel(config).eval()


def gpt2() -> nn.Module:
    """GPT2LMHeadModel: causal pre-norm decoder with learned positions and a tied LM head; no KV cache."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=MAX_POSITIONS,
        n_embd=32,
        n_layer=2,
        n_head=4,
        use_cache=False,
        bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1,
    )
    return GPT2LMHeadModel(config).eval()


def llama() -> nn.Module:
    """LlamaForCausalLM: RMSNorm, rotary positions, grouped-query attention, SwiGLU; no KV cache."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        use_cache=False,
    )
    return LlamaForCausalLM(config).eval()


# --- audio ----------------------------------------------------------------------------------------


def whisper_encoder() -> nn.Module:
    """WhisperModel's encoder: two strided 1-D convs over log-mel features, then a transformer.

    Whisper fixes the number of frames at 2 * max_source_positions (here 16 mel bins x 64 frames).
    """
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=16,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=4,
        decoder_ffn_dim=64,
        max_source_positions=32,
        max_target_positions=32,
        use_cache=False,
        # std 0.1, not 0.02: else the sinusoidal positions outweigh the convolved features, and the
        # output hardly depends on the input
        init_std=0.1,
        # the special tokens of the small vocabulary (the defaults point past it)
        pad_token_id=VOCAB - 1,
        bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1,
        decoder_start_token_id=VOCAB - 2,
        begin_suppress_tokens=None,
    )
    return WhisperModel(config).get_encoder().eval()


def wav2vec2() -> nn.Module:
    """Wav2Vec2Model: a strided conv feature encoder over raw audio, conv positions, a transformer."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 2, 2),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        apply_spec_augment=False,
    )
    return Wav2Vec2Model(config).eval()
