"""Tiny random models of each family, built offline from configs and saved like a user's folder.

The hub is never asked: tokenizers are trained in memory with `tokenizers` on a few
sentences (byte-level BPE for GPT-2 and RoBERTa, a SentencePiece-style Unigram for T5),
then wrapped as transformers tokenizers and saved with `save_pretrained`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "The trophy didn't fit into the suitcase because it was too big.",
    "A man is playing music. Music is made by a man.",
    "The keys to the cabinet are on the table.",
    "Das Tier ging nicht über die Straße, weil es zu müde war.",
    "The councilmen refused the demonstrators a permit because they feared violence.",
)


def _byte_level_bpe(specials: list[str], vocab_size: int = 400) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS), trainer=trainer)
    return tok


def save_tiny_gpt2(folder: Path) -> Path:
    """A 2-layer, 2-head random GPT-2 with a byte-level BPE tokenizer (markers "Ġ")."""
    import torch
    from tokenizers import processors
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    raw = _byte_level_bpe([eos])
    raw.post_processor = processors.ByteLevel(trim_offsets=False)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=eos, eos_token=eos, unk_token=eos, model_max_length=64
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _roberta_style_tokenizer() -> Any:
    """Byte-level BPE with RoBERTa's specials and pair layout: <s> A </s></s> B </s>."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw = _byte_level_bpe(specials)
    raw.post_processor = processors.RobertaProcessing(
        ("</s>", raw.token_to_id("</s>")),
        ("<s>", raw.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=False,
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=64,
    )


def save_tiny_roberta(folder: Path) -> Path:
    """A 2-layer, 2-head random RoBERTa with a byte-level BPE tokenizer (<s> A </s></s> B </s>)."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    tok = _roberta_style_tokenizer()
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        type_vocab_size=1,
    )
    RobertaModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _unigram(specials: list[str]) -> Any:
    """A SentencePiece-style ("▁") Unigram tokenizer trained in memory on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    raw.train_from_iterator(list(CORPUS), trainer=trainer)
    return raw


def save_tiny_t5(folder: Path, decoder_layers: int = 2) -> Path:
    """A 2-layer, 2-head random T5 with a SentencePiece-style Unigram tokenizer ("▁")."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5Model

    specials = ["<pad>", "</s>", "<unk>"]
    raw = _unigram(specials)
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )
    torch.manual_seed(0)
    # As in the published T5 configs (T5Config itself has no such argument in transformers 5).
    decoder_start: dict[str, Any] = {"decoder_start_token_id": 0}
    config = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=decoder_layers,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        **decoder_start,
    )
    T5Model(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_tiny_bart(folder: Path) -> Path:
    """A 2-layer, 2-head random BART with a byte-level BPE tokenizer (decoder starts with </s>)."""
    import torch
    from transformers import BartConfig, BartModel

    tok = _roberta_style_tokenizer()
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(tok),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id,
        forced_eos_token_id=tok.eos_token_id,
    )
    BartModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_tiny_llama(folder: Path) -> Path:
    """A 2-layer Llama with grouped-query attention (4 heads, 2 key/value heads) and a
    SentencePiece-style tokenizer that starts every input with "<s>"."""
    import torch
    from tokenizers import processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    raw = _unigram(specials)
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_tiny_gemma2(folder: Path) -> Path:
    """A 2-layer Gemma 2 (soft-capped scores: it must run eager attention) with the tiny
    Llama's tokenizer."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    save_tiny_llama(folder)  # its tokenizer files; the weights are replaced below
    cfg = Gemma2Config(
        vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        attn_logit_softcapping=5.0, query_pre_attn_scalar=8,
    )  # fmt: skip
    torch.manual_seed(0)
    Gemma2ForCausalLM(cfg).save_pretrained(folder)
    return folder
