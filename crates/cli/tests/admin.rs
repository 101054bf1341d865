//! `licen deploy` and `licen admin` as an operator runs them against a chain: the real `licen`
//! binary against a real anvil (and a real storage node for publishing), with the deployment
//! record on disk.

use alloy::providers::Provider as _;
use alloy::signers::local::PrivateKeySigner;
use licen_chain::anvil::DevChain;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{LICEN, ok_json, ok_text, refused};

/// Anvil's chain id (the record's file name).
const CHAIN_ID: u64 = 31337;

/// A fresh anvil and what the tests do with it.
struct Chain {
    anvil: DevChain,
    runtime: tokio::runtime::Runtime,
}

impl Chain {
    fn start() -> Self {
        Self {
            anvil: DevChain::spawn().unwrap(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    /// An anvil answering `chain_id`, standing in for a named network's chain.
    fn start_as(chain_id: u64) -> Self {
        Self {
            anvil: DevChain::spawn_as(chain_id).unwrap(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn rpc(&self) -> &str {
        self.anvil.rpc_url()
    }

    /// Dev account `index`: its key (hex, for `LICEN_PRIVATE_KEY`) and address.
    fn account(&self, index: usize) -> (String, String) {
        let signer: PrivateKeySigner = self.anvil.dev_signer(index);
        (
            format!("0x{}", hex::encode(signer.to_bytes())),
            format!("{:#x}", signer.address()),
        )
    }

    /// Gives `to` 10 ETH (anvil's `anvil_setBalance`: no transaction, no dev account involved).
    fn fund(&self, to: alloy::primitives::Address) {
        use alloy::providers::ext::AnvilApi as _;
        let provider = licen_chain::connect(self.rpc(), None).unwrap().provider;
        self.runtime
            .block_on(provider.anvil_set_balance(to, alloy::primitives::U256::from(10u128.pow(19))))
            .unwrap();
    }

    /// The transaction count of `address`: proves whether a command sent anything.
    fn nonce(&self, address: &str) -> u64 {
        let provider = licen_chain::connect(self.rpc(), None).unwrap().provider;
        self.runtime
            .block_on(async {
                provider
                    .get_transaction_count(address.parse().unwrap())
                    .await
            })
            .unwrap()
    }

    /// Whether the chain holds code at `address`.
    fn has_code(&self, address: &str) -> bool {
        let provider = licen_chain::connect(self.rpc(), None).unwrap().provider;
        !self
            .runtime
            .block_on(async { provider.get_code_at(address.parse().unwrap()).await })
            .unwrap()
            .is_empty()
    }

    /// `licen ARGS` in `dir` over this chain, data dir `state`, with `key` as the wallet.
    fn licen(&self, dir: &Path, key: Option<&str>, args: &[&str]) -> Output {
        self.command(dir, key, args).output().unwrap()
    }

    /// The command [`licen`](Self::licen) runs, for a service to be spawned.
    fn command(&self, dir: &Path, key: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(LICEN);
        command
            .args(args)
            .current_dir(dir)
            .env("LICEN_RPC_URL", self.rpc())
            .env("LICEN_DATA_DIR", "state")
            .env_remove("LICEN_CONTRACT")
            .env_remove("LICEN_NETWORK")
            .env_remove("LICEN_PRIVATE_KEY")
            .env_remove("LICEN_KEYSTORE")
            .env_remove("LICEN_STORAGE_URL")
            .env_remove("LICEN_STORAGE_INDEXER")
            .stdin(Stdio::null());
        if let Some(key) = key {
            command.env("LICEN_PRIVATE_KEY", key);
        }
        command
    }

    /// `licen --json ARGS`.
    fn json(&self, dir: &Path, key: Option<&str>, args: &[&str]) -> Output {
        self.licen(dir, key, &[&["--json"][..], args].concat())
    }
}

/// The deployment record `licen deploy` keeps for anvil.
fn record(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(record_path(dir)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn record_path(dir: &Path) -> std::path::PathBuf {
    dir.join("state")
        .join("deployments")
        .join(format!("{CHAIN_ID}.json"))
}

/// Asserts a refusal with exit code 1 and returns its stderr, lowercased (messages print
/// addresses checksummed; the tests hold them lowercase).
fn refused_plainly(output: Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "licen exits 1 on a refusal: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    refused(output).to_lowercase()
}

/// The operator's path: deploy to a fresh chain (recorded on disk), read the contract back,
/// register an orchestrator from its key file, and an owner publishes a dataset to it; a second
/// deployment on the same chain needs `--replace`.
#[test]
fn deploy_records_then_admin_registers_an_orchestrator_an_owner_publishes_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain = Chain::start();
    let (admin_key, admin) = chain.account(0);
    let (owner_key, _) = chain.account(1);
    let (orchestrator_key, orchestrator) = chain.account(3);

    let deployed = ok_json(chain.json(
        d,
        Some(&admin_key),
        &["deploy", "--fee-bps", "250", "--run-timeout", "2h"],
    ));
    let contract = deployed["contract"].as_str().unwrap().to_owned();
    assert!(chain.has_code(&contract));
    assert_eq!(deployed["chain_id"], CHAIN_ID);
    assert_eq!(
        deployed["admin"],
        admin.as_str(),
        "admin defaults to the wallet"
    );
    assert_eq!(
        deployed["treasury"],
        admin.as_str(),
        "treasury defaults to the admin"
    );
    assert_eq!(deployed["deployer"], admin.as_str());
    assert_eq!(deployed["fee_bps"], 250);
    assert_eq!(deployed["run_timeout_s"], 7200);
    assert!(deployed.get("replaced").is_none());
    let tx = deployed["tx"].as_str().unwrap().to_owned();
    let block = deployed["block"].as_u64().unwrap();
    assert!(block > 0);
    assert_eq!(
        deployed["record_file"],
        format!("state/deployments/{CHAIN_ID}.json")
    );

    // The record: public facts, mode 0644, the same as what was printed.
    let mode = std::fs::metadata(record_path(d))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(
        record(d),
        serde_json::json!({
            "chain_id": CHAIN_ID,
            "address": contract,
            "block": block,
            "tx": tx,
            "admin": admin,
            "treasury": admin,
            "fee_bps": 250,
            "run_timeout": 7200,
        })
    );
    let names: Vec<_> = std::fs::read_dir(d.join("state").join("deployments"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [format!("{CHAIN_ID}.json").as_str()],
        "no temp file left"
    );

    // Read back from the chain, no wallet needed.
    let shown = ok_json(chain.json(d, None, &["admin", "show", "--contract", &contract]));
    assert_eq!(shown["contract"], contract.as_str());
    assert_eq!(shown["chain_id"], CHAIN_ID);
    assert_eq!(shown["admin"], admin.as_str());
    assert_eq!(shown["treasury"], admin.as_str());
    assert_eq!(shown["fee_bps"], 250);
    assert_eq!(shown["max_fee_bps"], 1000);
    assert_eq!(shown["run_timeout_s"], 7200);
    assert!(shown.get("orchestrator_registration").is_none());
    let table =
        ok_text(chain.licen(d, None, &["admin", "show", "--contract", &contract])).to_lowercase();
    assert!(table.contains(&format!("admin        {admin}")), "{table}");
    assert!(
        table.contains("protocol fee 250 bps (2.50%; at most 1000 bps)"),
        "{table}"
    );
    assert!(table.contains("run timeout  7200 s (2h)"), "{table}");

    // The orchestrator's operator made its key with `licen keygen`; the admin registers it.
    let keygen = ok_json(chain.json(d, None, &["keygen", "-o", "orchestrator.key"]));
    let public_key = keygen["public_key"].as_str().unwrap().to_owned();
    // The orchestrator's registration, as `licen admin show --orchestrator` reads it.
    let registration = || {
        ok_json(chain.json(
            d,
            None,
            &[
                "admin",
                "show",
                "--contract",
                &contract,
                "--orchestrator",
                &orchestrator,
            ],
        ))["orchestrator_registration"]
            .clone()
    };
    let unregistered = registration();
    assert_eq!(unregistered["active"], false);
    assert_eq!(unregistered["registered"], false);
    let registered = ok_json(chain.json(
        d,
        Some(&admin_key),
        &[
            "admin",
            "register-orchestrator",
            "--contract",
            &contract,
            "--orchestrator",
            &orchestrator,
            "--key-file",
            "orchestrator.key",
        ],
    ));
    assert_eq!(registered["public_key"], public_key.as_str());
    assert_eq!(registered["orchestrator"], orchestrator.as_str());
    assert_eq!(registered["active"], true);
    assert!(registered["tx"].as_str().unwrap().starts_with("0x"));
    assert!(registered.get("previous_public_key").is_none());
    let shown = registration();
    assert_eq!(shown["active"], true);
    assert_eq!(shown["public_key"], public_key.as_str());

    // Registering it again is refused before sending, pointing at the rotation.
    let sent = chain.nonce(&admin);
    let said = refused_plainly(chain.licen(
        d,
        Some(&admin_key),
        &[
            "admin",
            "register-orchestrator",
            "--contract",
            &contract,
            "--orchestrator",
            &orchestrator,
            "--public-key",
            &public_key,
        ],
    ));
    assert!(said.contains("already registered and active"), "{said}");
    assert!(said.contains("rotate-orchestrator-key"), "{said}");
    assert_eq!(chain.nonce(&admin), sent, "nothing was sent");

    // The orchestrator's operator makes a new key and sends the admin its public half.
    let rotated_to =
        ok_json(chain.json(d, None, &["keygen", "-o", "orchestrator-2.key"]))["public_key"]
            .as_str()
            .unwrap()
            .to_owned();
    let rotated = ok_json(chain.json(
        d,
        Some(&admin_key),
        &[
            "admin",
            "rotate-orchestrator-key",
            "--contract",
            &contract,
            "--orchestrator",
            &orchestrator,
            "--public-key",
            &rotated_to,
        ],
    ));
    assert_eq!(rotated["public_key"], rotated_to.as_str());
    assert_eq!(rotated["previous_public_key"], public_key.as_str());
    // An orchestrator started with the key it had before is refused at start, not when a job's
    // envelope fails to open.
    let said = refused_plainly(chain.licen(
        d,
        Some(&orchestrator_key),
        &[
            "orchestrator",
            "--contract",
            &contract,
            "--key-file",
            "orchestrator.key",
            "--compute-attestation-key",
            &format!("0x{}", "11".repeat(32)),
        ],
    ));
    assert!(
        said.contains("is not the one registered for orchestrator")
            && said.contains("rotate-orchestrator-key"),
        "{said}"
    );
    let shown = registration();
    assert_eq!(shown["public_key"], rotated_to.as_str());
    assert_eq!(shown["active"], true);

    // An owner publishes a dataset to this contract and orchestrator.
    let node = common::StorageNode::start(d);
    let storage_url = node.url.clone();
    let rows: String = (0..20)
        .map(|i| format!("{{\"prompt\":\"question {i}\",\"completion\":\"answer {i}\"}}\n"))
        .collect();
    std::fs::write(d.join("data.jsonl"), rows).unwrap();
    let publish = |name: &str| {
        chain.json(
            d,
            Some(&owner_key),
            &[
                "publish",
                "data.jsonl",
                "--name",
                name,
                "--price",
                "0.01",
                "--purposes",
                "research",
                "--orchestrator",
                &orchestrator,
                "--contract",
                &contract,
                "--storage",
                &storage_url,
            ],
        )
    };
    let published = ok_json(publish("questions"));
    assert_eq!(published["orchestrator"], orchestrator.as_str());
    let root = published["dataset_root"].as_str().unwrap().to_owned();
    let dataset = ok_json(chain.json(d, None, &["dataset", &root, "--contract", &contract]));
    assert_eq!(dataset["orchestrator"], orchestrator.as_str());
    assert_eq!(dataset["state"], "open");

    // Deactivated, the orchestrator takes no new datasets.
    let deactivated = ok_json(chain.json(
        d,
        Some(&admin_key),
        &[
            "admin",
            "deactivate-orchestrator",
            "--contract",
            &contract,
            "--orchestrator",
            &orchestrator,
        ],
    ));
    assert_eq!(deactivated["active"], false);
    let shown = registration();
    assert_eq!(shown["active"], false);
    assert_eq!(shown["registered"], true);
    let said = refused(publish("again"));
    assert!(said.contains("deactivated"), "{said}");

    // A second deployment on the same chain: refused while the recorded contract is there.
    let sent = chain.nonce(&admin);
    let said = refused_plainly(chain.licen(d, Some(&admin_key), &["deploy"]));
    assert!(said.contains(&contract), "{said}");
    assert!(
        said.contains(&format!("state/deployments/{CHAIN_ID}.json")),
        "{said}"
    );
    assert!(said.contains("--replace"), "{said}");
    assert_eq!(chain.nonce(&admin), sent, "nothing was sent");
    assert_eq!(record(d)["address"], contract.as_str(), "record untouched");

    // With --replace it deploys and the record names the new contract.
    let (_, treasury) = chain.account(2);
    let replaced = ok_json(chain.json(
        d,
        Some(&admin_key),
        &["deploy", "--replace", "--treasury", &treasury],
    ));
    let second = replaced["contract"].as_str().unwrap().to_owned();
    assert_ne!(second, contract);
    assert_eq!(replaced["replaced"], contract.as_str());
    assert_eq!(replaced["treasury"], treasury.as_str());
    assert_eq!(replaced["fee_bps"], 0);
    assert_eq!(replaced["run_timeout_s"], 86_400, "default run timeout: 1d");
    let now = record(d);
    assert_eq!(now["address"], second.as_str());
    assert_eq!(now["tx"], replaced["tx"]);
    assert_eq!(now["treasury"], treasury.as_str());
    assert!(
        chain.has_code(&contract),
        "the old contract stays on the chain"
    );
}

/// What the contract would refuse is refused before any transaction; only the admin can act,
/// and after `transfer-admin` only the new one.
#[test]
fn admin_refusals_come_before_any_transaction_and_the_role_moves_with_transfer_admin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain = Chain::start();
    let (admin_key, admin) = chain.account(0);
    let (treasury_key, treasury) = chain.account(2);
    let (other_key, other) = chain.account(4);

    // Bad constructor arguments: nothing is sent, nothing recorded.
    for (args, expected) in [
        (
            &["--fee-bps", "1001"][..],
            "above the contract's cap of 1000 bps",
        ),
        (
            &["--fee-bps", "70000"][..],
            "above the contract's cap of 1000 bps",
        ),
        (
            &["--run-timeout", "0"][..],
            "the contract accepts 1 s to 4294967295 s",
        ),
        (
            &["--run-timeout", "4294967296"][..],
            "the contract accepts 1 s to 4294967295 s",
        ),
        (&["--run-timeout", "50000d"][..], "the contract accepts 1 s"),
        (&["--run-timeout", "soon"][..], "not a duration"),
        (
            &["--treasury", "0x0000000000000000000000000000000000000000"][..],
            "--treasury is the zero address",
        ),
    ] {
        let said =
            refused_plainly(chain.licen(d, Some(&admin_key), &[&["deploy"][..], args].concat()));
        assert!(said.contains(expected), "{args:?}: {said}");
        assert!(said.contains("nothing was sent"), "{said}");
    }
    assert_eq!(chain.nonce(&admin), 0, "no transaction was sent");
    assert!(!record_path(d).exists(), "nothing was recorded");

    // Under --json the refusal is also an error object on stdout.
    let output = chain.json(d, Some(&admin_key), &["deploy", "--fee-bps", "1001"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--fee-bps 1001")
    );

    let deployed = ok_json(chain.json(
        d,
        Some(&admin_key),
        &["deploy", "--treasury", &treasury, "--fee-bps", "100"],
    ));
    let contract = deployed["contract"].as_str().unwrap().to_owned();
    let on = ["--contract", contract.as_str()];
    let admin_cmd = |key: &str, args: &[&str]| {
        chain.licen(d, Some(key), &[&["admin"][..], args, &on[..]].concat())
    };
    let show = || ok_json(chain.json(d, None, &[&["admin", "show"][..], &on[..]].concat()));

    // A wallet that is not the admin is told so plainly, before anything is sent.
    let said = refused_plainly(admin_cmd(&other_key, &["set-fee", "--fee-bps", "10"]));
    assert!(
        said.contains(
            &format!(
                "wallet {other} is not the DataPolicy admin ({admin}): only the admin can set the \
             protocol fee"
            )
            .to_lowercase()
        ),
        "{said}"
    );
    let said = refused_plainly(admin_cmd(
        &other_key,
        &[
            "register-orchestrator",
            "--orchestrator",
            &other,
            "--key-file",
            "missing.key",
        ],
    ));
    assert!(
        said.contains("missing.key"),
        "a bad key file is named first: {said}"
    );
    let said = refused_plainly(admin_cmd(
        &other_key,
        &[
            "register-orchestrator",
            "--orchestrator",
            &other,
            "--public-key",
            &format!("0x{}", "ab".repeat(32)),
        ],
    ));
    assert!(
        said.contains("is not the datapolicy admin") && said.contains("register orchestrators"),
        "{said}"
    );
    assert_eq!(chain.nonce(&other), 0, "the non-admin sent nothing");

    // A fee above the deployed contract's cap: refused before sending.
    let sent = chain.nonce(&admin);
    let said = refused_plainly(admin_cmd(&admin_key, &["set-fee", "--fee-bps", "1001"]));
    assert!(
        said.contains("above the contract's cap of 1000 bps"),
        "{said}"
    );
    let said = refused_plainly(admin_cmd(&admin_key, &["set-fee", "--fee-bps", "100"]));
    assert!(said.contains("already 100 bps"), "{said}");
    // Neither flag: clap's usage refusal (exit 2) names both.
    let said = refused(admin_cmd(&admin_key, &["set-fee"]));
    assert!(
        said.contains("--fee-bps") && said.contains("--treasury"),
        "{said}"
    );
    assert_eq!(chain.nonce(&admin), sent, "nothing was sent");

    // set-fee, then show reflects it; the treasury is kept unless given.
    let set = ok_json(chain.json(
        d,
        Some(&admin_key),
        &[&["admin", "set-fee", "--fee-bps", "500"][..], &on[..]].concat(),
    ));
    assert_eq!(set["fee_bps"], 500);
    assert_eq!(set["previous_fee_bps"], 100);
    assert_eq!(set["treasury"], treasury.as_str());
    let shown = show();
    assert_eq!(shown["fee_bps"], 500);
    assert_eq!(shown["treasury"], treasury.as_str());
    ok_json(chain.json(
        d,
        Some(&admin_key),
        &[&["admin", "set-fee", "--treasury", &other][..], &on[..]].concat(),
    ));
    let shown = show();
    assert_eq!(shown["fee_bps"], 500);
    assert_eq!(shown["treasury"], other.as_str());

    // transfer-admin wants confirmation; then the old admin is refused and the new one acts.
    let sent = chain.nonce(&admin);
    let said = refused_plainly(admin_cmd(
        &admin_key,
        &["transfer-admin", "--to", &treasury],
    ));
    assert!(said.contains("--yes"), "{said}");
    assert_eq!(chain.nonce(&admin), sent, "nothing was sent");
    let moved = ok_json(
        chain.json(
            d,
            Some(&admin_key),
            &[
                &["admin", "transfer-admin", "--to", &treasury, "--yes"][..],
                &on[..],
            ]
            .concat(),
        ),
    );
    assert_eq!(moved["admin"], treasury.as_str());
    assert_eq!(moved["previous_admin"], admin.as_str());
    assert_eq!(show()["admin"], treasury.as_str());
    let sent = chain.nonce(&admin);
    let said = refused_plainly(admin_cmd(&admin_key, &["set-fee", "--fee-bps", "0"]));
    assert!(
        said.contains(
            &format!("wallet {admin} is not the DataPolicy admin ({treasury})").to_lowercase()
        ),
        "{said}"
    );
    assert_eq!(chain.nonce(&admin), sent, "the old admin sent nothing");
    ok_json(chain.json(
        d,
        Some(&treasury_key),
        &[&["admin", "set-fee", "--fee-bps", "0"][..], &on[..]].concat(),
    ));
    assert_eq!(show()["fee_bps"], 0);

    // An address without a contract is named, not decoded into nonsense.
    let said = refused_plainly(chain.licen(d, None, &["admin", "show", "--contract", &other]));
    assert!(
        said.contains(&format!("there is no contract at {other}")),
        "{said}"
    );

    // A corrupt record is named, and deploy refuses rather than overwrite it silently.
    std::fs::write(record_path(d), "{ not json").unwrap();
    let said = refused_plainly(chain.licen(d, Some(&admin_key), &["deploy"]));
    assert!(
        said.contains(&format!("state/deployments/{CHAIN_ID}.json")),
        "{said}"
    );
    assert!(said.contains("corrupt"), "{said}");
}

/// `--network galileo` (or `LICEN_NETWORK`) binds every command to 0G Galileo's chain id 16602:
/// an endpoint of another chain is refused before anything is signed, `licen deploy` records
/// its contract under that chain, and later commands find it by the network's name alone.
#[test]
fn a_network_binds_commands_to_its_chain_and_finds_the_contract_deployed_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let galileo = Chain::start_as(16602);
    let local = Chain::start();
    let (dev_key, _) = galileo.account(0);
    // An operator's own key, funded on the stand-in chain (anvil's keys are public).
    let operator = PrivateKeySigner::random();
    let (admin_key, admin) = (
        format!("0x{}", hex::encode(operator.to_bytes())),
        format!("{:#x}", operator.address()),
    );
    galileo.fund(operator.address());
    let dev_nonce = galileo.nonce(&galileo.account(0).1);

    // A publicly keyed development account is refused off the local stack, before anything.
    let said =
        refused_plainly(galileo.licen(d, Some(&dev_key), &["--network", "galileo", "deploy"]));
    assert!(
        said.contains("development account #0") && said.contains("private key is public"),
        "{said}"
    );
    assert_eq!(galileo.nonce(&galileo.account(0).1), dev_nonce);

    // A galileo deployment sent to a chain that is not 16602 is refused before it is signed.
    let said =
        refused_plainly(local.licen(d, Some(&admin_key), &["--network", "galileo", "deploy"]));
    assert!(
        said.contains("is chain 31337, not galileo (chain 16602)")
            && said.contains("nothing was sent"),
        "{said}"
    );
    assert_eq!(local.nonce(&admin), 0);

    // On the right chain it deploys and records the contract under 16602.
    let deployed = ok_json(galileo.json(d, Some(&admin_key), &["--network", "galileo", "deploy"]));
    assert_eq!(deployed["chain_id"], 16602, "{deployed}");
    let contract = deployed["contract"].as_str().unwrap().to_lowercase();
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("state/deployments/16602.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        recorded["address"].as_str().unwrap().to_lowercase(),
        contract
    );

    // Named by the network alone (flag or variable), commands find that contract.
    let shown = ok_json(galileo.json(d, None, &["--network", "galileo", "admin", "show"]));
    assert_eq!(
        shown["contract"].as_str().unwrap().to_lowercase(),
        contract,
        "{shown}"
    );
    assert_eq!(shown["admin"].as_str().unwrap().to_lowercase(), admin);
    let by_variable = ok_json(
        Command::new(LICEN)
            .args(["--json", "admin", "show"])
            .current_dir(d)
            .env("LICEN_NETWORK", "galileo")
            .env("LICEN_RPC_URL", galileo.rpc())
            .env("LICEN_DATA_DIR", "state")
            .env_remove("LICEN_CONTRACT")
            .output()
            .unwrap(),
    );
    assert_eq!(by_variable["contract"], shown["contract"]);

    // Nothing recorded under another data dir: the message says how to get there.
    let said = refused_plainly(galileo.licen(
        d,
        None,
        &[
            "--network",
            "galileo",
            "admin",
            "show",
            "--data-dir",
            "empty",
        ],
    ));
    assert!(
        said.contains("no deployment on galileo (chain 16602) recorded in")
            && said.contains("licen --network galileo deploy"),
        "{said}"
    );
    // Mainnet over the testnet's endpoint: the chain is refused before any contract is sought.
    let said = refused_plainly(galileo.licen(d, None, &["--network", "mainnet", "admin", "show"]));
    assert!(
        said.contains("is chain 16602, not mainnet (chain 16661)"),
        "{said}"
    );
    // And the testnet's endpoint without naming it: the network must be named.
    let said = refused_plainly(galileo.licen(d, None, &["admin", "show", "--contract", &contract]));
    assert!(said.contains("--network galileo"), "{said}");

    // The galileo contract named explicitly over the wrong chain's endpoint: refused, not read.
    let said = refused_plainly(local.licen(
        d,
        Some(&admin_key),
        &[
            "--network",
            "galileo",
            "pause",
            "--contract",
            &contract,
            &format!("0x{}", "01".repeat(32)),
        ],
    ));
    assert!(
        said.contains("is chain 31337, not galileo (chain 16602)"),
        "{said}"
    );
    assert_eq!(local.nonce(&admin), 0);

    // Off the local stack the orchestrator will not release keys on a development attestation
    // unless told to, knowingly.
    let said = refused_plainly(galileo.licen(
        d,
        Some(&admin_key),
        &[
            "--network",
            "galileo",
            "orchestrator",
            "--compute-attestation-key",
            &format!("0x{}", "11".repeat(32)),
        ],
    ));
    assert!(
        said.contains("proves no tee") && said.contains("--insecure-dev-attestation"),
        "{said}"
    );

    // The local stack is only ever local; an unknown network name says which exist.
    let said = refused_plainly(local.licen(d, None, &["--network", "galileo", "dev"]));
    assert!(said.contains("`licen dev` runs the local stack"), "{said}");
    let said = refused(local.licen(d, None, &["--network", "testnet", "admin", "show"]));
    assert!(
        said.contains("\"testnet\" is not a LICEN network") && said.contains("galileo"),
        "{said}"
    );
}

/// `licen --json --network galileo ARGS`.
fn on_galileo<'a>(args: &[&'a str]) -> Vec<&'a str> {
    [&["--json", "--network", "galileo"][..], args].concat()
}

/// On a named network the services find `licen deploy`'s contract by the network alone: the
/// indexer, the web app (which then offers wallets the network's chain and explorer) and the
/// orchestrator, which starts on the development attestation only when told it is insecure,
/// and says so. Reading an account's earnings signs nothing, so a development key may read.
#[test]
fn on_a_network_the_services_find_the_recorded_contract_and_say_when_they_are_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let galileo = Chain::start_as(16602);
    let operator = PrivateKeySigner::random();
    let (operator_key, operator_address) = (
        format!("0x{}", hex::encode(operator.to_bytes())),
        format!("{:#x}", operator.address()),
    );
    galileo.fund(operator.address());
    let deployed = ok_json(galileo.licen(d, Some(&operator_key), &on_galileo(&["deploy"])));
    let contract = deployed["contract"].as_str().unwrap().to_lowercase();
    ok_json(galileo.json(d, None, &["keygen", "-o", "orchestrator.key"]));
    ok_json(galileo.licen(
        d,
        Some(&operator_key),
        &on_galileo(&[
            "admin",
            "register-orchestrator",
            "--orchestrator",
            &operator_address,
            "--key-file",
            "orchestrator.key",
        ]),
    ));

    // A development key reads (nothing is signed); it still may not sign (the deploy test).
    let (dev_key, dev_address) = galileo.account(1);
    let earnings = ok_json(galileo.licen(d, Some(&dev_key), &on_galileo(&["earnings"])));
    assert_eq!(
        earnings["account"].as_str().unwrap().to_lowercase(),
        dev_address
    );
    assert_eq!(earnings["withdrawable_wei"], "0", "{earnings}");

    // The indexer and the web app find the contract through the network's deployment record.
    let (_indexer, line) = common::spawn_service(&mut galileo.command(
        d,
        None,
        &on_galileo(&["indexer", "--listen", "127.0.0.1:0", "--poll-ms", "100"]),
    ));
    let indexer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        indexer["contract"].as_str().unwrap().to_lowercase(),
        contract
    );
    let indexer_url = indexer["indexer_url"].as_str().unwrap().to_owned();
    let storage = common::StorageNode::start(d);
    let (_web, line) = common::spawn_service(&mut galileo.command(
        d,
        None,
        &on_galileo(&[
            "web",
            "--listen",
            "127.0.0.1:0",
            "--indexer",
            &indexer_url,
            "--storage",
            &storage.url,
        ]),
    ));
    let web: serde_json::Value = serde_json::from_str(&line).unwrap();
    let config = common::get_json(&format!("{}/api/config", web["web_url"].as_str().unwrap()));
    let chain = &config["chain"];
    assert_eq!(
        chain["data_policy"].as_str().unwrap().to_lowercase(),
        contract,
        "{config}"
    );
    assert_eq!(chain["chain_id"], 16602, "{config}");
    assert_eq!(
        chain["explorer_tx_url"], "https://chainscan-galileo.0g.ai/tx/",
        "{config}"
    );

    // The orchestrator: refused on the development attestation unless told it is insecure;
    // told, it starts with its registered key and the recorded contract, and warns.
    let attestation_key = format!("0x{}", "11".repeat(32));
    let orchestrator = |extra: &[&str]| {
        let mut args = on_galileo(&[
            "orchestrator",
            "--key-file",
            "orchestrator.key",
            "--indexer",
            &indexer_url,
            "--storage",
            &storage.url,
            "--compute-url",
            "http://127.0.0.1:9",
            "--compute-attestation-key",
            &attestation_key,
        ]);
        args.extend_from_slice(extra);
        galileo.command(d, Some(&operator_key), &args)
    };
    let said = refused_plainly(orchestrator(&[]).output().unwrap());
    assert!(said.contains("--insecure-dev-attestation"), "{said}");
    let sent_before = galileo.nonce(&operator_address);
    let (_orchestrator, line) =
        common::spawn_service(orchestrator(&["--insecure-dev-attestation"]).stderr(Stdio::null()));
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        started["contract"].as_str().unwrap().to_lowercase(),
        contract
    );
    assert_eq!(
        started["orchestrator"].as_str().unwrap().to_lowercase(),
        operator_address
    );
    assert_eq!(started["leading"], true, "{started}");
    let warning = started["warning"].as_str().unwrap();
    assert!(
        warning.starts_with("INSECURE development attestation"),
        "{warning}"
    );
    // Leading, it holds the wallet first: one fencing transaction of its own, nothing else.
    let fenced = std::time::Instant::now();
    while galileo.nonce(&operator_address) == sent_before {
        assert!(
            fenced.elapsed() < std::time::Duration::from_secs(20),
            "the leading orchestrator never fenced its wallet"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(galileo.nonce(&operator_address), sent_before + 1);
    assert!(
        d.join("state/galileo/orchestrator/ledger.sqlite").is_file(),
        "the ledger is kept per network"
    );
}
