//! The public dataset manifest (DESIGN.md §5.3) and the owner-side JSONL check that fills it.
//!
//! Canonical JSON: keys in lexicographic order (struct fields are declared sorted), no
//! whitespace, so the same dataset description always hashes to the same 0G root. The manifest
//! is public: it carries counts and a schema name, never a line of the data.

use anyhow::{Result, bail};
use serde::Serialize;
use std::io::BufRead;

/// Manifest format version.
pub(crate) const MANIFEST_VERSION: u32 = 1;

/// What a JSONL dataset's lines look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Schema {
    /// `{"text": "..."}`
    Text,
    /// `{"prompt": "...", "completion": "..."}`
    PromptCompletion,
    /// `{"messages": [{"role": ..., "content": ...}, ...]}`
    Messages,
}

impl Schema {
    /// The name the manifest and the marketplace use (`prompt_completion`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::PromptCompletion => "prompt_completion",
            Self::Messages => "messages",
        }
    }
}

/// Counts from one pass over the plaintext (it never leaves the owner's machine).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonlSummary {
    pub(crate) schema: Schema,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

/// The public manifest, fields sorted by name (canonical order).
#[derive(Debug, Serialize)]
pub(crate) struct DatasetManifest {
    pub(crate) allowed_trainer_measurements: Vec<String>,
    pub(crate) byte_size: u64,
    pub(crate) description: String,
    pub(crate) license: String,
    pub(crate) name: String,
    pub(crate) row_count: u64,
    pub(crate) schema: Schema,
    pub(crate) token_estimate: u64,
    pub(crate) version: u32,
}

impl DatasetManifest {
    /// Canonical bytes (what is uploaded and addressed by its 0G root).
    pub(crate) fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }
}

/// Checks every line is a training example of one schema and counts them. Errors name the line
/// and what was expected, never the line's content (it is private).
pub(crate) fn scan_jsonl(reader: impl BufRead) -> Result<JsonlSummary> {
    let mut schema = None;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let number = index + 1;
        bytes += line.len() as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&line).map_err(|e| {
            anyhow::anyhow!(
                "line {number} is not valid JSON ({} at column {}): each line must be one JSON object",
                e.classify_name(),
                e.column()
            )
        })?;
        let found = classify(&value).ok_or_else(|| {
            anyhow::anyhow!(
                "line {number} is not a training example: expected {{\"text\": string}}, {{\"prompt\": string, \"completion\": string}} or {{\"messages\": [{{\"role\", \"content\"}}, …]}}"
            )
        })?;
        match schema {
            None => schema = Some(found),
            Some(first) if first != found => bail!(
                "line {number} is a {} example but earlier lines are {}: a dataset uses one schema",
                found.name(),
                first.name()
            ),
            Some(_) => {}
        }
        rows += 1;
    }
    let Some(schema) = schema else {
        bail!("the dataset has no examples: expected at least one JSON line");
    };
    Ok(JsonlSummary {
        schema,
        rows,
        bytes,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

fn classify(value: &serde_json::Value) -> Option<Schema> {
    let object = value.as_object()?;
    let is_str = |key: &str| object.get(key).is_some_and(serde_json::Value::is_string);
    if is_str("text") {
        return Some(Schema::Text);
    }
    if is_str("prompt") && is_str("completion") {
        return Some(Schema::PromptCompletion);
    }
    let messages = object.get("messages")?.as_array()?;
    let valid = !messages.is_empty()
        && messages.iter().all(|m| {
            m.get("role").is_some_and(serde_json::Value::is_string)
                && m.get("content").is_some_and(serde_json::Value::is_string)
        });
    valid.then_some(Schema::Messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_and_errors() {
        type Expected = Result<(Schema, u64), &'static str>;
        let cases: [(&str, Expected); 7] = [
            (
                "{\"text\":\"a\"}\n{\"text\":\"b\"}\n",
                Ok((Schema::Text, 2)),
            ),
            (
                "{\"prompt\":\"p\",\"completion\":\"c\"}\n\n",
                Ok((Schema::PromptCompletion, 1)),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                Ok((Schema::Messages, 1)),
            ),
            (
                "{\"text\":\"a\"}\nnot json\n",
                Err("line 2 is not valid JSON"),
            ),
            ("{\"txt\":\"a\"}\n", Err("line 1 is not a training example")),
            (
                "{\"text\":\"a\"}\n{\"prompt\":\"p\",\"completion\":\"c\"}\n",
                Err("one schema"),
            ),
            ("\n\n", Err("no examples")),
        ];
        for (input, expected) in cases {
            let got = scan_jsonl(input.as_bytes());
            match expected {
                Ok((schema, rows)) => {
                    let s = got.unwrap();
                    assert_eq!((s.schema, s.rows), (schema, rows), "{input}");
                }
                Err(needle) => {
                    let message = got.unwrap_err().to_string();
                    assert!(message.contains(needle), "{message}");
                    assert!(!message.contains("not json"), "errors never echo data");
                }
            }
        }
    }

    #[test]
    fn canonical_json_has_sorted_keys_and_no_whitespace() {
        let manifest = DatasetManifest {
            allowed_trainer_measurements: vec![],
            byte_size: 10,
            description: "d".into(),
            license: "l".into(),
            name: "n".into(),
            row_count: 1,
            schema: Schema::Text,
            token_estimate: 3,
            version: MANIFEST_VERSION,
        };
        let json = String::from_utf8(manifest.to_canonical_json()).unwrap();
        assert_eq!(
            json,
            r#"{"allowed_trainer_measurements":[],"byte_size":10,"description":"d","license":"l","name":"n","row_count":1,"schema":"text","token_estimate":3,"version":1}"#
        );
    }
}
