//! The model folder's `tokenizer.json`, through the `tokenizers` crate (which candle-core
//! already builds, with the same features, so it adds no compile time).
//!
//! Owns text → ids and the BOS/EOS ids (from `config.json`, falling back to the tokenizer's
//! `<s>`/`</s>`/`<|endoftext|>`-style special tokens).
//! Must never: put the text being encoded into an error.

use std::path::Path;

use crate::{Error, Result};

/// A loaded tokenizer with the model's special ids.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `path` (a `tokenizer.json`).
    ///
    /// # Errors
    /// [`Error::ModelFolder`] when the file is missing or not a tokenizer.
    pub fn load(path: &Path, bos: Option<u32>, eos: Option<u32>) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::ModelFolder(format!(
                "{} is not a Hugging Face tokenizer.json ({e})",
                path.display()
            ))
        })?;
        Ok(TextTokenizer { inner, bos, eos })
    }

    /// Vocabulary size including added tokens.
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`, without special tokens.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] (the message never contains the text).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|_| Error::Tokenizer("the tokenizer rejected a record".into()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Beginning-of-sequence id, if any.
    #[must_use]
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence id, if any.
    #[must_use]
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
}
