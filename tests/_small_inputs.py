"""Token lengths and model configs shared by the verifier and what-if tests (inputs built in code)."""

from __future__ import annotations

# Token lengths: Azure LLM inference trace 2023, conversation
CONV_IN = {"mean": 1154.7, "percentiles": {50: 1020, 90: 2734, 99: 4142}, "max": 14050}  # Azure conv trace
CONV_OUT = {"mean": 211.1, "percentiles": {50: 129, 90: 424, 99: 601}, "max": 1000}

MODELS = {
    "llama-3.1-8b": {  # https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
        "id": "llama-3.1-8b", "hf_repo": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 32768,
        "architecture": {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                         "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072},
    },
    "llama-3.2-1b": {  # https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/config.json
        "id": "llama-3.2-1b", "hf_repo": "meta-llama/Llama-3.2-1B-Instruct", "max_model_len": 32768,
        "architecture": {"model_type": "llama", "num_hidden_layers": 16, "hidden_size": 2048, "num_attention_heads": 32,
                         "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
                         "tie_word_embeddings": True, "max_position_embeddings": 131072},
    },
}  # fmt: skip
