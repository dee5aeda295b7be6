"""Checkpoints in the exact formats of the real models, with made-up weights, for tests.

They exercise the real loading code (TorchXRayVision's loaders, transformers'
``from_pretrained``) without the real weights, which cannot be downloaded in CI. They are never
used in a product path: only tests install them, into a temporary weights dir.
"""

from __future__ import annotations

from pathlib import Path

from copilot.config import Settings
from copilot.models.cards import shipped_cards


def _target(settings: Settings, model_id: str) -> Path:
    card = shipped_cards()[model_id]
    folder = settings.weights_dir / model_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / card.files[0].name


def _register(settings: Settings, model_id: str, path: Path) -> Path:
    """Record the file through the registry (a model counts as installed only once verified)."""
    from copilot.models.registry import ModelRegistry

    ModelRegistry(settings).add(model_id, path.parent)
    return path


def install_fake_densenet(settings: Settings, positive: tuple[int, ...] = (10,)) -> Path:
    """A TorchXRayVision DenseNet-121 pickled like the released file, biased so the listed
    label indices (10 = Cardiomegaly) come out above threshold."""
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(0)
    model = xrv.models.DenseNet(num_classes=18)
    with torch.no_grad():
        model.classifier.weight.mul_(0.01)
        model.classifier.bias.fill_(-30.0)
        for index in positive:
            model.classifier.bias[index] = 8.0
    path = _target(settings, "xrv-densenet121-res224-all")
    torch.save(model, path)
    return _register(settings, "xrv-densenet121-res224-all", path)


def install_fake_pspnet(settings: Settings, present: tuple[int, ...] = ()) -> Path:
    """A PSPNet state dict saved from DataParallel ('module.' prefixes), as released; the
    structures whose target indices are in ``present`` (4 and 5 the lungs, 8 the heart) are
    segmented over the whole image."""
    import torch
    from torchxrayvision.baseline_models.chestx_det.ptsemseg.pspnet import pspnet

    torch.manual_seed(0)
    model = pspnet(14)
    with torch.no_grad():
        for index in present:
            model.classification.weight[index].zero_()
            model.classification.bias[index] = 10.0
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = _target(settings, "xrv-pspnet-chestx-det")
    torch.save(state, path)
    return _register(settings, "xrv-pspnet-chestx-det", path)


def make_tiny_sam(folder: Path) -> Path:
    """A tiny transformers SamModel + SamProcessor saved with save_pretrained (real format)."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        output_channels=32,
        image_size=128,
        patch_size=16,
        global_attn_indexes=[1],
        mlp_dim=64,
        num_pos_feats=16,
    )
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=128, patch_size=16)
    decoder = SamMaskDecoderConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_dim=64,
        iou_head_hidden_dim=32,
    )
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    SamModel(config).save_pretrained(folder)
    processor = SamProcessor(
        SamImageProcessor(size={"longest_edge": 128}, pad_size={"height": 128, "width": 128})
    )
    processor.save_pretrained(folder)
    return folder


def make_tiny_report_model(folder: Path) -> Path:
    """A tiny VisionEncoderDecoder (ViT + BERT decoder) with BertTokenizer and ViTImageProcessor,
    saved with save_pretrained: the format of the SwinV2-BERT report generators."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "no",
        "acute",
        "findings",
        "effusion",
        ".",
    ]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    encoder = ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
    )
    decoder = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        is_decoder=True,
        add_cross_attention=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id = (
        tokenizer.cls_token_id,
        tokenizer.pad_token_id,
    )
    config.eos_token_id = tokenizer.sep_token_id
    VisionEncoderDecoderModel(config=config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_tiny_vlm(folder: Path) -> Path:
    """A tiny LLaVA-style image-text-to-text model with its processor and chat template, saved
    with save_pretrained: loaded through AutoModelForImageTextToText / AutoProcessor exactly
    as the VQA tool loads MedGemma."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    words = [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
        "<image>",
        "user",
        "assistant",
        "system",
        ":",
        "the",
        "line",
        "ends",
        "in",
        "svc",
        "?",
        "where",
        "does",
        "central",
        "you",
        "are",
        "an",
        "expert",
        "radiologist",
        ".",
    ]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    template = (
        "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
        "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=16,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        patch_size=16,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    processor.save_pretrained(folder)
    return folder
