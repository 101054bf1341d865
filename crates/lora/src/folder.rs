//! A Hugging Face model folder: `config.json`, `*.safetensors`, `tokenizer.json`.
//!
//! Owns opening and checking the folder once, when the node starts: missing files, an
//! unsupported architecture, weights that do not match the config and a tokenizer larger than
//! the model's vocabulary are all refused here, with a sentence naming the folder and the fix.
//! Also owns the model's identity: its name and the SHA-256 over its files, which go into the
//! trainer config (and so into the attested measurement).
//! Must never: download anything, or change the folder.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::Device;
use sha2::{Digest, Sha256};

use crate::config::LlamaConfig;
use crate::model::BaseModel;
use crate::tokenizer::TextTokenizer;
use crate::{Error, Result};

/// An opened, checked model folder with its weights loaded.
#[derive(Debug)]
pub struct ModelFolder {
    dir: PathBuf,
    name: String,
    sha256: [u8; 32],
    tokenizer: TextTokenizer,
    model: BaseModel,
}

fn file_hash(hasher: &mut Sha256, path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::ModelFolder(format!("cannot read {}: {e}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(file.metadata()?.len().to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(())
}

impl ModelFolder {
    /// Opens `dir` on `device`. `name` is the model's id as written into the adapter's
    /// `base_model_name_or_path` (default: the folder's name).
    ///
    /// # Errors
    /// [`Error::ModelFolder`] or [`Error::UnsupportedModel`], naming the folder and what to fix.
    pub fn open(dir: &Path, name: Option<String>, device: &Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::ModelFolder(format!(
                "{} is not a directory: expected a Hugging Face model folder with config.json, *.safetensors and tokenizer.json",
                dir.display()
            )));
        }
        for required in ["config.json", "tokenizer.json"] {
            if !dir.join(required).is_file() {
                return Err(Error::ModelFolder(format!(
                    "{} has no {required}: expected a Hugging Face model folder with config.json, *.safetensors and tokenizer.json",
                    dir.display()
                )));
            }
        }
        let config_bytes = std::fs::read(dir.join("config.json"))?;
        let config = LlamaConfig::from_json(&config_bytes).map_err(|e| match e {
            Error::UnsupportedModel(m) => {
                Error::UnsupportedModel(format!("{}/config.json: {m}", dir.display()))
            }
            other => other,
        })?;
        let tokenizer = TextTokenizer::load(
            &dir.join("tokenizer.json"),
            config.bos_token_id,
            config.eos_token_id,
        )?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::ModelFolder(format!(
                "{}: tokenizer.json has {} tokens but config.json's vocab_size is {}: the tokenizer does not belong to this model",
                dir.display(),
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let model = BaseModel::load(dir, config, device)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "safetensors")
                    || p.file_name()
                        .is_some_and(|n| n == "config.json" || n == "tokenizer.json")
            })
            .collect();
        files.sort();
        let mut hasher = Sha256::new();
        for f in &files {
            file_hash(&mut hasher, f)?;
        }
        let name = name.unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
        });
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            name,
            sha256: hasher.finalize().into(),
            tokenizer,
            model,
        })
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model's id (`base_model_name_or_path` of the adapter).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 over the folder's config, tokenizer and weight files (names, sizes, bytes).
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The tokenizer.
    #[must_use]
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The frozen base model.
    #[must_use]
    pub fn model(&self) -> &BaseModel {
        &self.model
    }
}
