//! The text tokenizer: an HF `tokenizers::Tokenizer` built from a model's
//! [`TokenizerSource`] — a `tokenizer.json`, or the byte-level BPE vocabulary
//! and merges embedded in a GGUF (`tokenizer.ggml.model = "gpt2"`).
//!
//! For GGUF sources the tokenizer mirrors what HF transformers builds from
//! the same file (see `shared/reference/smollm2-135m-tokenizer.json`): BPE
//! with the GGUF vocabulary and merges, a ByteLevel pre-tokenizer (GPT-2
//! regex, no prefix space), a ByteLevel decoder, no normalizer, control
//! tokens (`token_type` 3) as special added tokens, and no post-processing.
//!
//! Encoding is text-only: [`Tokenizer::encode`] adds no special tokens;
//! callers append eos themselves.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::pretrained::weights::{LoadedModel, TokenizerSource};

/// llama.cpp `tokenizer.ggml.pre` values whose pre-tokenization equals the
/// GPT-2 ByteLevel regex for the vocabularies that use them.
///
/// `smollm`: llama.cpp splits every `\p{N}` before the GPT-2 regex; the
/// SmolLM vocabulary has no token that joins a digit to anything, so ASCII
/// digits come out one per token either way, and transformers (whose
/// tokenizer produced the reference numbers) uses the plain ByteLevel regex.
/// A GGUF without `tokenizer.ggml.pre` is treated as `gpt-2`, as transformers
/// does; any other value is an error (llama.cpp's other pre-tokenizers use
/// different regexes).
pub const SUPPORTED_PRE: &[&str] = &["smollm", "gpt-2"];

/// GGUF `token_type` values (llama.cpp `llama_token_type`).
const TOKEN_TYPE_UNKNOWN: i32 = 2;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A text tokenizer with the model's special ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl Tokenizer {
    /// The tokenizer of a loaded model; bos/eos come from its config.
    pub fn for_model(model: &LoadedModel) -> Result<Tokenizer> {
        let source = model
            .tokenizer
            .as_ref()
            .ok_or_else(|| anyhow!("the model carries no tokenizer (no tokenizer.ggml.* metadata / no tokenizer.json)"))?;
        let mut tok = Tokenizer::from_source(source)?;
        tok.bos_id = model.config.bos_token_id;
        tok.eos_id = Some(model.config.eos_token_id);
        if tok.vocab_size() > model.config.vocab_size {
            bail!("tokenizer has {} tokens but the model's vocabulary is {}", tok.vocab_size(), model.config.vocab_size);
        }
        Ok(tok)
    }

    /// Build from tokenizer material. For a `tokenizer.json` source the
    /// special ids are unknown here (use [`Tokenizer::for_model`]).
    pub fn from_source(source: &TokenizerSource) -> Result<Tokenizer> {
        match source {
            TokenizerSource::Json(json) => Ok(Tokenizer { inner: parse_json(json)?, bos_id: None, eos_id: None }),
            TokenizerSource::GgufBpe { model, pre, tokens, merges, token_types, bos_id, eos_id } => {
                let json = gguf_bpe_json(model, pre.as_deref(), tokens, merges, token_types)?;
                let inner: tokenizers::Tokenizer = serde_json::from_value(json).map_err(|e| anyhow!("building the GGUF tokenizer: {e}"))?;
                Ok(Tokenizer { inner, bos_id: *bos_id, eos_id: *eos_id })
            }
        }
    }

    /// Read a `tokenizer.json` file.
    pub fn from_json_file(path: &Path) -> Result<Tokenizer> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        parse_json(&text).map(|inner| Tokenizer { inner, bos_id: None, eos_id: None }).with_context(|| format!("in {}", path.display()))
    }

    /// Token ids of `text`, with no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| anyhow!("tokenizing failed: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// [`Tokenizer::encode`] for many texts.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts.iter().map(|t| self.encode(t)).collect()
    }

    /// Text of `ids`; special tokens are kept unless `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(|e| anyhow!("decoding failed: {e}"))
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The underlying HF tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Serialized `tokenizer.json`.
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| anyhow!("serializing tokenizer: {e}"))
    }
}

fn parse_json(json: &str) -> Result<tokenizers::Tokenizer> {
    json.parse::<tokenizers::Tokenizer>().map_err(|e| anyhow!("invalid tokenizer.json: {e}"))
}

/// The `tokenizer.json` document for a GGUF `gpt2` byte-level BPE.
pub fn gguf_bpe_json(model: &str, pre: Option<&str>, tokens: &[String], merges: &[String], token_types: &[i32]) -> Result<Value> {
    if model != "gpt2" {
        bail!(
            "unsupported GGUF tokenizer model `{model}` (peftc builds `gpt2` byte-level BPE; supply an HF directory with tokenizer.json instead)"
        );
    }
    if let Some(pre) = pre
        && !SUPPORTED_PRE.contains(&pre)
    {
        bail!(
            "unsupported GGUF pre-tokenizer `tokenizer.ggml.pre = {pre}` (supported: {}); supply an HF directory with tokenizer.json instead",
            SUPPORTED_PRE.join(", ")
        );
    }
    if token_types.len() != tokens.len() {
        bail!("{} token types for {} tokens", token_types.len(), tokens.len());
    }
    let mut vocab = Map::with_capacity(tokens.len());
    for (id, tok) in tokens.iter().enumerate() {
        if vocab.contains_key(tok) {
            bail!("token {id} `{tok}` duplicates an earlier token in tokenizer.ggml.tokens");
        }
        vocab.insert(tok.clone(), json!(id));
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let mut parts = m.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                for side in [a, b] {
                    if !vocab.contains_key(side) {
                        bail!("merge {i} `{m}` uses `{side}`, which is not in the vocabulary");
                    }
                }
                pairs.push(json!([a, b]));
            }
            _ => bail!("merge {i} `{m}` is not two tokens separated by one space"),
        }
    }
    let added: Vec<Value> = token_types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, TOKEN_TYPE_UNKNOWN | TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .map(|(id, &t)| {
            json!({
                "id": id,
                "content": tokens[id],
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": t != TOKEN_TYPE_USER_DEFINED,
            })
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": pairs
        }
    }))
}
