//! Every `--json` output speaks one vocabulary (README, "The `licen` command"): the commands
//! are run against a `licen dev` stack, each output's every field is checked against the table
//! below, and commands describing the same job or dataset (one reading the chain, the other
//! the indexer) must agree on every field both print. Failures print one JSON error object.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{
    Dev, LICEN, ONE_RESEARCH_RUN, OWNER_KEY, RESEARCHER_KEY, free_port, licen, ok_json,
    wait_for_state,
};
use serde_json::Value;

/// The format a field must have.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// A non-negative integer.
    Uint,
    /// Unix seconds, or `null` where there is none (a policy without an end).
    TimeOrNull,
    /// A decimal string of wei.
    Wei,
    /// `0x` + 64 lowercase hex digits.
    Hash,
    /// `0x` + 40 lowercase hex digits.
    Address,
    /// A lowercase job state (in an object with `job_id`) or dataset state.
    State,
    /// A purpose slug.
    Purpose,
    Purposes,
    Bool,
    Text,
    Texts,
    /// A byte count, or `null` where it cannot be measured (peak memory off Linux).
    BytesOrNull,
    Seconds,
    Object,
    ObjectOrNull,
    Array,
}

/// Fields by exact name.
const NAMES: &[(&str, Format)] = &[
    ("job_id", Format::Uint),
    ("tx", Format::Hash),
    ("block", Format::Uint),
    ("at", Format::Uint),
    ("deadline", Format::Uint),
    ("state", Format::State),
    ("researcher", Format::Address),
    ("owner", Format::Address),
    ("orchestrator", Format::Address),
    ("account", Format::Address),
    ("contract", Format::Address),
    ("epochs", Format::Uint),
    ("actual_epochs", Format::Uint),
    ("rows", Format::Uint),
    ("job_count", Format::Uint),
    ("max_epochs_per_run", Format::Uint),
    ("max_runs_per_requester", Format::Uint),
    ("purpose", Format::Purpose),
    ("allowed_purposes", Format::Purposes),
    ("result_key", Format::Hash),
    ("attestation_ref", Format::Hash),
    ("paused", Format::Bool),
    ("more", Format::Bool),
    ("name", Format::Text),
    ("description", Format::Text),
    ("fail_reason", Format::Text),
    ("message", Format::Text),
    ("causes", Format::Texts),
    ("policy", Format::Object),
    ("previous_policy", Format::Object),
    ("error", Format::Object),
    ("warning", Format::Text),
    ("measurement", Format::Hash),
    ("public_key", Format::Hash),
    ("segments", Format::Uint),
    ("sent_segments", Format::Uint),
    ("skipped_segments", Format::Uint),
    ("finalized", Format::Bool),
    ("node", Format::Text),
    ("file", Format::Text),
    ("output", Format::Text),
    ("root", Format::Hash),
    ("compute_attestation_key", Format::Hash),
    ("completion", Format::ObjectOrNull),
    ("flow_submission", Format::ObjectOrNull),
    ("flow_submissions", Format::Array),
    ("tx_seq", Format::Uint),
    ("sectors", Format::Uint),
    ("items", Format::Array),
    ("chain_id", Format::Uint),
    ("admin", Format::Address),
    ("treasury", Format::Address),
    ("deployer", Format::Address),
    ("replaced", Format::Address),
    ("fee_bps", Format::Uint),
    ("max_fee_bps", Format::Uint),
    ("orchestrator_registration", Format::Object),
    ("active", Format::Bool),
    ("registered", Format::Bool),
];

/// Fields by suffix, for names not in [`NAMES`].
const SUFFIXES: &[(&str, Format)] = &[
    ("_wei", Format::Wei),
    ("_at", Format::TimeOrNull),
    ("_root", Format::Hash),
    ("_hash", Format::Hash),
    ("_tx", Format::Hash),
    ("_block", Format::Uint),
    ("_bytes", Format::BytesOrNull),
    ("_s", Format::Seconds),
    ("_url", Format::Text),
    ("_file", Format::Text),
];

const JOB_STATES: [&str; 6] = [
    "granted",
    "running",
    "completed",
    "failed",
    "expired",
    "reclaimed",
];
const DATASET_STATES: [&str; 3] = ["open", "paused", "closed"];
const PURPOSES: [&str; 7] = [
    "research",
    "non-commercial-fine-tuning",
    "commercial-fine-tuning",
    "medical-research",
    "evaluation",
    "education",
    "safety-research",
];

fn format_of(key: &str) -> Format {
    NAMES
        .iter()
        .find(|(name, _)| *name == key)
        .or_else(|| SUFFIXES.iter().find(|(suffix, _)| key.ends_with(suffix)))
        .map(|(_, format)| *format)
        .unwrap_or_else(|| panic!("`{key}` is not in the --json vocabulary"))
}

fn is_hex(value: &Value, digits: usize) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 2 + digits
            && s.starts_with("0x")
            && s[2..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Checks every field of `value` (recursively) against the vocabulary; `at` names the
/// command for the panic message.
fn check(value: &Value, at: &str) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| check(v, at)),
        Value::Object(fields) => {
            let in_job = fields.contains_key("job_id");
            for (key, v) in fields {
                let format = format_of(key);
                let ok = match format {
                    Format::Uint => v.is_u64(),
                    Format::TimeOrNull => v.is_u64() || v.is_null(),
                    Format::Wei => v.as_str().is_some_and(|s| {
                        !s.is_empty()
                            && s.bytes().all(|b| b.is_ascii_digit())
                            && (s == "0" || !s.starts_with('0'))
                    }),
                    Format::Hash => is_hex(v, 64),
                    Format::Address => is_hex(v, 40),
                    Format::State => v.as_str().is_some_and(|s| {
                        if in_job {
                            JOB_STATES.contains(&s)
                        } else {
                            DATASET_STATES.contains(&s)
                        }
                    }),
                    Format::Purpose => v.as_str().is_some_and(|s| PURPOSES.contains(&s)),
                    Format::Purposes => v.as_array().is_some_and(|a| {
                        a.iter()
                            .all(|p| p.as_str().is_some_and(|s| PURPOSES.contains(&s)))
                    }),
                    Format::Bool => v.is_boolean(),
                    Format::Text => v.is_string(),
                    Format::Texts => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                    Format::BytesOrNull => v.is_u64() || v.is_null(),
                    Format::Seconds => v.is_number(),
                    Format::Object => v.is_object(),
                    Format::ObjectOrNull => v.is_object() || v.is_null(),
                    Format::Array => v.is_array(),
                };
                assert!(ok, "{at}: `{key}` is not {format:?}: {v}");
                check(v, at);
            }
        }
        _ => {}
    }
}

/// `a` and `b` describe the same thing: every field both print is equal, and each of `shared`
/// is printed by both (so the agreement is not vacuous).
fn agree(a: &Value, b: &Value, shared: &[&str], what: &str) {
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    for key in shared {
        assert!(
            a.contains_key(*key) && b.contains_key(*key),
            "{what}: `{key}` missing"
        );
    }
    for (key, value) in a {
        if let Some(other) = b.get(key) {
            assert_eq!(value, other, "{what}: `{key}` differs");
        }
    }
}

/// Runs `args` until `done` holds for its output (the indexer catches up within seconds).
fn until(d: &Path, dev: &Dev, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let out = ok_json(licen(d, dev, Some(RESEARCHER_KEY), args));
        if done(&out) {
            return out;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "{args:?} never showed what was expected: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The single item of a listing.
fn only_item(listing: &Value) -> &Value {
    let items = listing["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listing}");
    &items[0]
}

/// A failed `--json` command: non-zero exit, the sentence still on stderr, and exactly one
/// JSON object on stdout, `{"error": {"message", "causes"}}`, matching stderr's lines.
fn json_error(output: Output) -> Value {
    assert!(!output.status.success(), "unexpectedly succeeded");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let mut objects = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let report = objects.next().expect("a JSON object on stdout").unwrap();
    assert!(objects.next().is_none(), "more than one object: {stdout}");
    check(&report, "error");
    assert_eq!(
        report.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["error"]
    );
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("error: {message}")),
        "{stderr} / {message}"
    );
    for cause in report["error"]["causes"].as_array().unwrap() {
        let cause = cause.as_str().unwrap();
        assert!(stderr.contains(&format!("caused by: {cause}")), "{stderr}");
    }
    report
}

#[test]
fn every_json_output_speaks_one_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines: String = (0..20)
        .map(|i| format!("{{\"text\":\"row {i}\"}}\n"))
        .collect();
    std::fs::write(d.join("data.jsonl"), lines).unwrap();
    let dev = Dev::start(d, [free_port(), free_port(), free_port(), free_port()]);
    let published = ok_json(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[
            &[
                "publish",
                "data.jsonl",
                "--name",
                "vocab",
                "--price",
                "0.01",
            ][..],
            ONE_RESEARCH_RUN,
        ]
        .concat(),
    ));
    let root = published["dataset_root"].as_str().unwrap().to_owned();
    let requested = ok_json(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            &root,
            "--epochs",
            "2",
            "--purpose",
            "research",
            "--yes",
        ],
    ));
    let job = requested["job_id"].as_u64().unwrap();
    let id = job.to_string();
    assert_eq!(
        wait_for_state(d, &dev, job, &["completed", "failed"], 60),
        "completed"
    );

    // Each command's output, every field checked against the vocabulary.
    let job_json = ok_json(licen(d, &dev, None, &["job", &id]));
    let jobs = until(d, &dev, &["jobs", "--dataset", &root], |j| {
        j["items"][0]["state"] == "completed"
    });
    let mine = ok_json(licen(d, &dev, Some(RESEARCHER_KEY), &["jobs", "--mine"]));
    let market = until(d, &dev, &["market", "--all"], |m| {
        m["items"][0]["job_count"] == 1
    });
    let dataset = ok_json(licen(d, &dev, None, &["dataset", &root]));
    let earnings = ok_json(licen(d, &dev, Some(OWNER_KEY), &["earnings"]));
    let watched = licen(d, &dev, None, &["job", &id, "--watch"]);
    let watched: Vec<Value> = common::ok_text(watched)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outputs: Vec<(&str, &Value)> = vec![
        ("publish", &published),
        ("request", &requested),
        ("job", &job_json),
        ("jobs", &jobs),
        ("jobs --mine", &mine),
        ("market", &market),
        ("dataset", &dataset),
        ("earnings", &earnings),
    ];
    for (command, output) in &outputs {
        check(output, command);
    }
    for line in &watched {
        check(line, "job --watch");
    }

    // The same job from the chain (`job`) and the indexer (`jobs`), and as requested.
    let listed = only_item(&jobs);
    agree(
        &job_json,
        listed,
        &[
            "job_id",
            "dataset_root",
            "researcher",
            "state",
            "epochs",
            "price_per_epoch_wei",
            "escrow_wei",
            "deadline",
            "completion",
        ],
        "job vs jobs",
    );
    assert_eq!(job_json["completion"]["actual_epochs"], 2, "{job_json}");
    assert_eq!(only_item(&mine), listed);
    agree(
        &requested,
        listed,
        &[
            "job_id",
            "dataset_root",
            "epochs",
            "purpose",
            "escrow_wei",
            "result_key",
        ],
        "request vs jobs",
    );
    assert_eq!(requested["tx"], listed["requested_tx"]);
    assert_eq!(requested["block"], listed["requested_block"]);
    let states: Vec<&str> = watched
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["granted", "running", "completed"]);
    assert!(watched.iter().all(|l| l["job_id"] == job));
    assert_eq!(watched[0]["tx"], requested["tx"]);
    assert_eq!(watched[0]["at"], listed["requested_at"]);

    // The same dataset from the chain (`dataset`), the indexer (`market`), and as published.
    let item = only_item(&market);
    let dataset_fields = [
        "dataset_root",
        "state",
        "paused",
        "owner",
        "orchestrator",
        "policy",
        "policy_hash",
    ];
    agree(&dataset, item, &dataset_fields, "dataset vs market");
    assert_eq!(dataset["state"], "open");
    agree(
        &published,
        item,
        &[
            "dataset_root",
            "owner",
            "orchestrator",
            "policy",
            "policy_hash",
            "envelope_root",
            "manifest_root",
        ],
        "publish vs market",
    );
    assert_eq!(published["tx"], item["published_tx"]);
    assert_eq!(published["block"], item["published_block"]);

    // Pause and resume print an object (not a sentence), and every view agrees on the state.
    for (command, paused, state) in [("pause", true, "paused"), ("resume", false, "open")] {
        let changed = ok_json(licen(d, &dev, Some(OWNER_KEY), &[command, &root]));
        check(&changed, command);
        assert_eq!(changed["dataset_root"], root.as_str());
        assert_eq!(changed["paused"], paused);
        let dataset = ok_json(licen(d, &dev, None, &["dataset", &root]));
        assert_eq!(dataset["state"], state);
        let market = until(d, &dev, &["market", "--all"], |m| {
            m["items"][0]["paused"] == paused
        });
        agree(
            &dataset,
            only_item(&market),
            &dataset_fields,
            &format!("{command}: dataset vs market"),
        );
    }

    // Failures: the JSON error object on stdout, and never a key in it.
    let missing = json_error(licen(d, &dev, None, &["job", "99"]));
    assert_eq!(
        missing["error"]["message"],
        "there is no job 99 on this contract"
    );
    let not_owner = json_error(licen(d, &dev, Some(RESEARCHER_KEY), &["pause", &root]));
    let text = not_owner.to_string();
    assert!(text.contains("does not own dataset"), "{text}");
    assert!(!text.contains(RESEARCHER_KEY.trim_start_matches("0x")));

    // The operator's commands: the dev contract's settings and its orchestrator, and a second
    // deployment (recorded in a data dir of its own).
    let orchestrator = published["orchestrator"].as_str().unwrap();
    let shown = ok_json(licen(
        d,
        &dev,
        None,
        &["admin", "show", "--orchestrator", orchestrator],
    ));
    check(&shown, "admin show");
    assert_eq!(
        shown["orchestrator_registration"]["active"], true,
        "{shown}"
    );
    let deployed = ok_json(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &["deploy", "--data-dir", "operator"],
    ));
    check(&deployed, "deploy");
    assert_ne!(deployed["contract"], shown["contract"]);
    dev.stop();
}

/// The file commands, and services' start lines (one JSON line when they serve, not a
/// sentence), need no chain.
#[test]
fn file_commands_and_services_speak_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_storage, line) = common::spawn_service(
        Command::new(LICEN)
            .args([
                "--json",
                "storage-node",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(d.join("storage"))
            .stderr(Stdio::null()),
    );
    let storage: Value = serde_json::from_str(&line).unwrap();
    check(&storage, "storage-node");
    let url = storage["storage_url"].as_str().unwrap().to_owned();
    let (_compute, line) = common::spawn_service(
        Command::new(LICEN)
            .args([
                "--json",
                "compute-node",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(d.join("compute"))
            .args(["--storage", &url])
            .stderr(Stdio::null()),
    );
    let compute: Value = serde_json::from_str(&line).unwrap();
    check(&compute, "compute-node");
    assert!(
        compute["compute_url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );

    std::fs::write(d.join("data.jsonl"), "{\"text\":\"a row\"}\n").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(LICEN)
            .arg("--json")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        let value = ok_json(output);
        check(&value, args[0]);
        value
    };
    let key = run(&["keygen", "-o", "k"]);
    let public = key["public_key"].as_str().unwrap().to_owned();
    let sealed = run(&["seal", "data.jsonl", "--to", &public, "-o", "s"]);
    let root = sealed["dataset_root"].as_str().unwrap().to_owned();
    assert_eq!(run(&["root", "s"])["root"], root.as_str());
    let put = run(&["put", "s", "--storage", &url]);
    assert_eq!(put["root"], root.as_str());
    assert_eq!(put["size_bytes"], sealed["sealed_bytes"]);
    let got = run(&["get", &root, "-o", "g", "--storage", &url]);
    assert_eq!(got["size_bytes"], sealed["sealed_bytes"]);
    let opened = run(&[
        "open",
        "g",
        "--envelope",
        "s.envelope",
        "--key",
        "k",
        "-o",
        "o",
    ]);
    assert_eq!(opened["dataset_root"], root.as_str());
    assert_eq!(opened["plaintext_bytes"], sealed["plaintext_bytes"]);
}

/// Failures with a cause chain, and arguments clap refuses, need no stack.
#[test]
fn failures_under_json_print_one_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(LICEN)
            .args(args)
            .current_dir(dir.path())
            .env_remove("LICEN_INDEXER_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let unreachable = run(&["--json", "jobs", "--indexer", "http://127.0.0.1:1"]);
    let report = json_error(unreachable);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("could not reach the indexer at http://127.0.0.1:1"),
        "{report}"
    );
    assert!(
        !report["error"]["causes"].as_array().unwrap().is_empty(),
        "{report}"
    );
    // Arguments clap refuses: clap's exit code and text on stderr; the object carries the
    // whole sentence (with the arguments it names on clap's continuation lines) and the usage.
    let usage_error = |args: &[&str], names: &str| {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "clap's exit code is kept");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        check(&report, "error");
        assert!(
            report["error"]["message"].as_str().unwrap().contains(names),
            "{report}"
        );
        let causes = report["error"]["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c.as_str().unwrap().contains("--help")),
            "{report}"
        );
        assert!(!String::from_utf8(output.stderr).unwrap().is_empty());
    };
    usage_error(&["job", "not-a-number", "--json"], "not-a-number");
    usage_error(
        &[
            "--json",
            "publish",
            "rows.jsonl",
            "--name",
            "n",
            "--purposes",
            "research",
        ],
        "were not provided: --price <PRICE>",
    );
    // Without --json: the sentence on stderr only, nothing on stdout.
    let plain = run(&["jobs", "--indexer", "http://127.0.0.1:1"]);
    assert!(!plain.status.success() && plain.stdout.is_empty());
}
