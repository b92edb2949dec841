//! The text tokenizer: an HF `tokenizers::Tokenizer` built from a model's
//! [`TokenizerSource`] — a `tokenizer.json`, the byte-level BPE vocabulary
//! and merges embedded in a GGUF (`tokenizer.ggml.model = "gpt2"`), or the
//! SentencePiece vocabulary of a Gemma GGUF (`tokenizer.ggml.model =
//! "llama"`).
//!
//! For GGUF sources the tokenizer mirrors what HF transformers builds from
//! the same file. `gpt2` (see `shared/reference/smollm2-135m-tokenizer.json`):
//! BPE with the GGUF vocabulary and merges, a ByteLevel pre-tokenizer (GPT-2
//! regex, no prefix space), a ByteLevel decoder, no normalizer, control
//! tokens (`token_type` 3) as special added tokens, and no post-processing.
//! `llama` on a Gemma architecture: see [`gguf_sentencepiece_json`].
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

/// `tokenizer.ggml.model` values peftc builds a tokenizer from: `gpt2`
/// (byte-level BPE) and `llama` (SentencePiece BPE, for the architectures
/// in [`SENTENCEPIECE_ARCHS`]).
pub const SUPPORTED_GGUF_MODELS: &[&str] = &["gpt2", "llama"];

/// `general.architecture` values whose SentencePiece (`llama`) vocabulary
/// peftc builds: transformers' `gemma_tokenizer`, whose merges follow token
/// order. For other architectures transformers ranks the merges by
/// `tokenizer.ggml.scores` and adds a prefix space (`LlamaTokenizer`, Phi-3's
/// normalizer), which peftc does not implement.
pub const SENTENCEPIECE_ARCHS: &[&str] = &["gemma", "gemma2", "gemma3"];

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
            TokenizerSource::GgufSentencePiece { architecture, tokens, token_types, bos_id, eos_id, unk_id, pad_id, add_space_prefix } => {
                let special = SpecialIds { bos: *bos_id, eos: *eos_id, unk: *unk_id, pad: *pad_id };
                let json = gguf_sentencepiece_json(architecture, tokens, token_types, special, *add_space_prefix)?;
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
        .map(|(id, &t)| added_token(id, &tokens[id], t != TOKEN_TYPE_USER_DEFINED))
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

/// The special token ids a GGUF names (`tokenizer.ggml.*_token_id`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
}

impl SpecialIds {
    fn keyed(self) -> [(&'static str, Option<u32>); 4] {
        [
            ("tokenizer.ggml.bos_token_id", self.bos),
            ("tokenizer.ggml.eos_token_id", self.eos),
            ("tokenizer.ggml.unknown_token_id", self.unk),
            ("tokenizer.ggml.padding_token_id", self.pad),
        ]
    }
}

/// The special tokens transformers' `GemmaTokenizer` registers by name.
const GEMMA_SPECIAL_NAMES: [&str; 5] = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"];

/// Python's `str.isspace`: Unicode `White_Space` plus the ASCII information
/// separators U+001C..U+001F (which Python counts as whitespace, Rust not).
fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// How transformers' `gemma_tokenizer` spells a GGUF token in the BPE
/// vocabulary: a token of whitespace containing a space (llama.cpp's
/// converter writes Gemma's `▁▁`… user-defined tokens with real spaces)
/// becomes as many `▁` as it has characters; `None` when kept as is.
fn gemma_respelling(token: &str) -> Option<String> {
    (token.contains(' ') && token.chars().all(python_isspace)).then(|| "\u{2581}".repeat(token.chars().count()))
}

/// The `tokenizer.json` document for a GGUF SentencePiece (`llama`)
/// vocabulary of a Gemma architecture, equal to what transformers 5 builds
/// from the same file (`integrations/gguf`, `gemma_tokenizer` and
/// `add_gguf_special_tokens`):
///
/// - vocabulary: the GGUF tokens by id, a token of whitespace containing a
///   space respelled as that many `▁` ("  " → "▁▁");
/// - merges (the file has none): every split of a token into two
///   vocabulary tokens, ranked by the merged token's id (lower first), then
///   the longer left part first — transformers' `generate_merges` with
///   score −id (Gemma's scores do not follow its merge order);
/// - BPE with byte fallback (`<0x00>`..`<0xFF>` are ordinary vocabulary
///   entries), fused unknowns, `unk_token` the GGUF's unknown token;
/// - normalizer `Replace(" " → "▁")` with no prefix space; the
///   pre-tokenizer `Split(" ", MergedWithPrevious)` transformers sets (a
///   no-op after the normalizer); decoder `▁` → " ", byte fallback, fuse;
/// - added tokens, matched whole before the model (`normalized: false`):
///   user-defined tokens (type 4) except the respelled space runs (which go
///   through BPE) as non-special; as special the control tokens (type 3),
///   and, unless user-defined, the tokens of the file's bos/eos/unk/pad ids
///   and those named like `GemmaTokenizer`'s defaults (`<pad>` `<eos>`
///   `<bos>` `<unk>` `<mask>`) — which makes e.g. a `<unk>` of type 2
///   special, as transformers does (it also appends a default name missing
///   from the vocabulary as a new token, which peftc does not: the model
///   has no row for it);
/// - no post-processor: peftc encodes without special tokens and adds BOS
///   itself.
///
/// Refused: other architectures (whose SentencePiece tokenizers differ in
/// transformers), and `add_space_prefix = true` (llama.cpp would prepend a
/// space, transformers' Gemma tokenizer would not, so no choice matches
/// both).
pub fn gguf_sentencepiece_json(
    architecture: &str,
    tokens: &[String],
    token_types: &[i32],
    special: SpecialIds,
    add_space_prefix: bool,
) -> Result<Value> {
    if !SENTENCEPIECE_ARCHS.contains(&architecture) {
        bail!(
            "unsupported GGUF tokenizer: a SentencePiece vocabulary (`tokenizer.ggml.model = llama`) is built for architectures {} \
             (merges in token order), not `{architecture}` (transformers ranks its merges by tokenizer.ggml.scores); supply an HF \
             directory with tokenizer.json instead",
            SENTENCEPIECE_ARCHS.join(", ")
        );
    }
    if add_space_prefix {
        bail!(
            "unsupported GGUF tokenizer: `tokenizer.ggml.add_space_prefix = true` on a {architecture} SentencePiece vocabulary \
             (llama.cpp would prepend a space, transformers' Gemma tokenizer does not); supply an HF directory with tokenizer.json instead"
        );
    }
    if token_types.len() != tokens.len() {
        bail!("{} token types for {} tokens", token_types.len(), tokens.len());
    }
    let respelled: Vec<Option<String>> = tokens.iter().map(|t| gemma_respelling(t)).collect();
    // Each token as the vocabulary spells it.
    let spelled: Vec<&str> = respelled.iter().zip(tokens).map(|(r, t)| r.as_deref().unwrap_or(t)).collect();
    let mut ids: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(tokens.len());
    for (id, &token) in spelled.iter().enumerate() {
        if let Some(first) = ids.insert(token, id) {
            bail!("token {id} `{}` duplicates token {first} in tokenizer.ggml.tokens (as the vocabulary spells it)", tokens[id]);
        }
    }
    // Ranked as transformers sorts them: merged id ascending, then the
    // longer left part first (the split point moving left).
    let mut merges = Vec::new();
    for &token in &spelled {
        for (at, _) in token.char_indices().rev() {
            if at == 0 {
                continue;
            }
            let (left, right) = token.split_at(at);
            if ids.contains_key(left) && ids.contains_key(right) {
                merges.push(Value::Array(vec![Value::String(left.to_string()), Value::String(right.to_string())]));
            }
        }
    }
    let mut vocab = Map::with_capacity(tokens.len());
    for (id, &token) in spelled.iter().enumerate() {
        vocab.insert(token.to_string(), json!(id));
    }
    let mut named = vec![false; tokens.len()];
    for (key, id) in special.keyed() {
        if let Some(id) = id {
            let slot = named.get_mut(id as usize).ok_or_else(|| anyhow!("{key} {id} is outside the {} tokens", tokens.len()))?;
            *slot = true;
        }
    }
    for name in GEMMA_SPECIAL_NAMES {
        if let Some(&id) = ids.get(name) {
            named[id] = true;
        }
    }
    // transformers' BPE `unk_token` is `<unk>` whatever the file says; the
    // file's unknown token where it names one (the same for Gemma files).
    let unk_token = special.unk.map_or("<unk>", |id| spelled[id as usize]).to_string();
    let added: Vec<Value> = token_types
        .iter()
        .enumerate()
        .filter_map(|(id, &t)| {
            let special = match t {
                TOKEN_TYPE_USER_DEFINED if respelled[id].is_some() => return None,
                TOKEN_TYPE_USER_DEFINED => false,
                TOKEN_TYPE_CONTROL => true,
                _ if named[id] => true,
                _ => return None,
            };
            Some(added_token(id, &tokens[id], special))
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
        "post_processor": null,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"}
            ]
        },
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": unk_token,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": true,
            "byte_fallback": true,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": merges
        }
    }))
}

/// An entry of tokenizer.json's `added_tokens`: matched whole, before
/// normalization, never stripped.
fn added_token(id: usize, content: &str, special: bool) -> Value {
    json!({
        "id": id,
        "content": content,
        "single_word": false,
        "lstrip": false,
        "rstrip": false,
        "normalized": false,
        "special": special,
    })
}
