//! Turning JSONL records into token sequences with a loss mask.
//!
//! Owns the record shapes the trainer accepts (`{"text"}`, `{"prompt","completion"}`, chat
//! `{"messages"}`), the chat rendering, truncation, and the counts of truncated and skipped
//! records. Prompt tokens (the prompt of a prompt/completion record, every non-assistant message
//! and every role header) are masked out of the loss.
//! Must never: put record content into an error, a log line or the report (only counts).

use std::io::BufRead;

use serde::Serialize;

use crate::Result;
use crate::tokenizer::TextTokenizer;

/// One tokenized example: `ids[i]` with `trained[i]` telling whether the model is trained to
/// predict token `i` (from the tokens before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Token ids, at most `max_seq_len`.
    pub ids: Vec<u32>,
    /// Per token: counted in the loss.
    pub trained: Vec<bool>,
}

impl Example {
    /// Number of tokens that count in the loss (the first token is never predicted).
    #[must_use]
    pub fn trained_tokens(&self) -> usize {
        self.trained.iter().skip(1).filter(|t| **t).count()
    }
}

/// What reading the dataset found (counts only, never content).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DatasetStats {
    /// Non-blank lines.
    pub lines: u64,
    /// Records turned into examples.
    pub usable: u64,
    /// Usable records cut to the maximum sequence length.
    pub truncated: u64,
    /// Lines that are not JSON or not one of the record shapes.
    pub skipped_malformed: u64,
    /// Records whose text fields are all empty.
    pub skipped_empty: u64,
    /// Records left with no trained token (e.g. a prompt that fills the whole context).
    pub skipped_no_target: u64,
    /// Blank lines (ignored, not counted as records).
    pub blank_lines: u64,
}

struct Segment {
    text: String,
    trained: bool,
    /// A chat role header (not content).
    header: bool,
}

fn segments(value: &serde_json::Value) -> Option<Vec<Segment>> {
    let object = value.as_object()?;
    let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
    if let Some(t) = text("text") {
        return Some(vec![Segment {
            text: t.to_owned(),
            trained: true,
            header: false,
        }]);
    }
    if let (Some(p), Some(c)) = (text("prompt"), text("completion")) {
        return Some(vec![
            Segment {
                text: p.to_owned(),
                trained: false,
                header: false,
            },
            Segment {
                text: c.to_owned(),
                trained: true,
                header: false,
            },
        ]);
    }
    let messages = object.get("messages")?.as_array()?;
    if messages.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(messages.len() * 2);
    for m in messages {
        let role = m.get("role")?.as_str()?;
        let content = m.get("content")?.as_str()?;
        // A plain, model-independent chat rendering: "<role>: " header (never trained), then
        // the content (trained only for the assistant), then a newline.
        out.push(Segment {
            text: format!("{role}: "),
            trained: false,
            header: true,
        });
        out.push(Segment {
            text: format!("{content}\n"),
            trained: role == "assistant",
            header: false,
        });
    }
    Some(out)
}

/// Reads JSONL from `reader` into examples of at most `max_seq_len` tokens.
///
/// # Errors
/// [`Error::Io`] when reading fails; [`Error::Tokenizer`] when the tokenizer fails. Bad records
/// are skipped and counted, not errors.
pub fn read_examples(
    reader: impl BufRead,
    tokenizer: &TextTokenizer,
    max_seq_len: usize,
) -> Result<(Vec<Example>, DatasetStats)> {
    let mut stats = DatasetStats::default();
    let mut examples = Vec::new();
    for line in reader.split(b'\n') {
        let line = zeroize::Zeroizing::new(line?);
        if line.iter().all(u8::is_ascii_whitespace) {
            stats.blank_lines += 1;
            continue;
        }
        stats.lines += 1;
        let Some(segs) = serde_json::from_slice::<serde_json::Value>(&line)
            .ok()
            .as_ref()
            .and_then(segments)
        else {
            stats.skipped_malformed += 1;
            continue;
        };
        if segs.iter().all(|s| s.header || s.text.trim().is_empty()) {
            stats.skipped_empty += 1;
            continue;
        }
        let mut ids = Vec::new();
        let mut trained = Vec::new();
        if let Some(bos) = tokenizer.bos() {
            ids.push(bos);
            trained.push(false);
        }
        let mut any_trained_segment = false;
        for s in &segs {
            let toks = tokenizer.encode(&s.text)?;
            trained.extend(std::iter::repeat_n(s.trained, toks.len()));
            ids.extend(toks);
            any_trained_segment |= s.trained;
        }
        if any_trained_segment && let Some(eos) = tokenizer.eos() {
            ids.push(eos);
            trained.push(true);
        }
        if ids.len() > max_seq_len {
            ids.truncate(max_seq_len);
            trained.truncate(max_seq_len);
            stats.truncated += 1;
        }
        let example = Example { ids, trained };
        if example.trained_tokens() == 0 {
            stats.skipped_no_target += 1;
            continue;
        }
        stats.usable += 1;
        examples.push(example);
    }
    Ok((examples, stats))
}
