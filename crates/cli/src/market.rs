//! Read-only marketplace commands over the indexer's query API: `market` (datasets, filtered
//! and sorted) and `jobs` (by researcher, owner or dataset). The indexer only holds public chain
//! data; nothing here needs a key unless `--mine` asks "my jobs".

use crate::output::{self, Dataset, Job, JobTransition, Listing};
use crate::wallet::WalletArgs;
use anyhow::{Context, Result, bail};
use clap::Args;
use licen_indexer::query::{DatasetView, JobDetail, JobView, Page};
use licen_types::{Purpose, format_wei, parse_wei};

#[derive(Debug, Args)]
pub(crate) struct MarketArgs {
    /// Only datasets that allow this purpose.
    #[arg(long)]
    purpose: Option<Purpose>,
    /// Only datasets priced at most this per epoch (`0.01` or `5000wei`).
    #[arg(long)]
    max_price: Option<String>,
    /// Only this owner's datasets.
    #[arg(long)]
    owner: Option<String>,
    /// Include paused and expired datasets.
    #[arg(long)]
    all: bool,
    /// newest, price or popularity.
    #[arg(long, default_value = "newest")]
    sort: String,
    /// At most this many rows (1 to 100, the indexer's page size cap).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// The indexer's query API.
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    indexer: String,
}

#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    /// Jobs requested by this address.
    #[arg(long)]
    researcher: Option<String>,
    /// Jobs on this owner's datasets.
    #[arg(long)]
    owner: Option<String>,
    /// Jobs on this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Jobs of the wallet (`--private-key`, `LICEN_PRIVATE_KEY` or `--keystore`) as researcher.
    #[arg(long)]
    mine: bool,
    #[command(flatten)]
    wallet: WalletArgs,
    /// At most this many rows (1 to 100, the indexer's page size cap).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// The indexer's query API.
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    indexer: String,
}

async fn get(url: &str, query: &[(&str, String)]) -> Result<serde_json::Value> {
    let with_query = url::Url::parse_with_params(url, query)
        .with_context(|| format!("`{url}` is not a URL: pass --indexer http://HOST:PORT"))?;
    let response = reqwest::Client::new()
        .get(with_query)
        .send()
        .await
        .with_context(|| {
            format!("could not reach the indexer at {url}: is `licen dev` running?")
        })?;
    answer(response).await
}

/// The JSON body of an indexer answer; a refusal becomes the indexer's own sentence.
async fn answer(response: reqwest::Response) -> Result<serde_json::Value> {
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the indexer answered non-JSON")?;
    if !status.is_success() {
        bail!(
            "the indexer refused the query: {}",
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(body)
}

/// Fetches one page of `/{what}` as `T` (an indexer view).
async fn page<T: serde::de::DeserializeOwned>(
    indexer: &str,
    what: &str,
    query: &[(&str, String)],
) -> Result<Page<T>> {
    let page = get(&format!("{}/{what}", indexer.trim_end_matches('/')), query).await?;
    serde_json::from_value(page)
        .with_context(|| format!("the indexer answered a malformed /{what} page"))
}

/// Prints a page: with `--json` as a [`Listing`] of `map`ped items and returns `None`;
/// otherwise returns its items, or says nothing matched and returns `None`.
fn listing<T, O: serde::Serialize>(
    page: Page<T>,
    what: &str,
    json: bool,
    map: impl Fn(&T) -> Result<O>,
) -> Result<Option<Vec<T>>> {
    if json {
        let items = page.items.iter().map(map).collect::<Result<Vec<_>>>()?;
        output::print(&Listing {
            items,
            more: page.next_cursor.is_some(),
        });
        return Ok(None);
    }
    if page.items.is_empty() {
        println!("no {what} match");
        return Ok(None);
    }
    Ok(Some(page.items))
}

pub(crate) async fn market(args: MarketArgs, json: bool) -> Result<()> {
    let mut query = vec![
        ("sort", args.sort.clone()),
        ("limit", args.limit.to_string()),
    ];
    if let Some(p) = args.purpose {
        query.push(("purpose", p.slug().to_owned()));
    }
    if let Some(price) = &args.max_price {
        query.push(("max_price", parse_wei(price)?.to_string()));
    }
    if let Some(owner) = &args.owner {
        query.push(("owner", owner.clone()));
    }
    if !args.all {
        query.push(("active", "true".into()));
    }
    let datasets = page::<DatasetView>(&args.indexer, "datasets", &query).await?;
    let Some(items) = listing(datasets, "datasets", json, Dataset::from_indexer)? else {
        return Ok(());
    };
    println!(
        "{:<28} {:<18} {:>14} {:>10} {:>5}  {:<8} purposes",
        "name", "dataset", "price/epoch", "epochs≤", "jobs", "state"
    );
    for d in items {
        let price = d.policy.price_per_epoch.parse::<u128>().unwrap_or(0);
        println!(
            "{:<28} {:<18} {:>14} {:>10} {:>5}  {:<8} {}",
            clip(d.name.as_deref().unwrap_or("(no manifest yet)"), 28),
            short_root(&d.root),
            format_wei(price),
            d.policy.max_epochs_per_run,
            d.job_count,
            output::dataset_state(d.paused, d.active),
            d.policy.allowed_purposes.join(","),
        );
    }
    println!("(roots shortened; `--json` prints them whole, with every policy term)");
    Ok(())
}

/// `text` (an owner's manifest field: untrusted) made safe for a terminal and cut to `width`
/// characters, with an ellipsis when cut: control characters, escape sequences included,
/// become `?`, so a name cannot move the cursor, recolour or rewrite the table.
fn clip(text: &str, width: usize) -> String {
    let safe: Vec<char> = text
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_control(c) {
                '?'
            } else {
                c
            }
        })
        .collect();
    if safe.len() <= width {
        return safe.into_iter().collect();
    }
    let mut kept: String = safe[..width - 1].iter().collect();
    kept.push('…');
    kept
}

/// Unicode bidirectional overrides and isolates: they reorder what a terminal shows.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `0x1234abcd…9876ef` for a 32-byte hex root.
fn short_root(root: &str) -> String {
    if root.len() <= 18 {
        return root.to_owned();
    }
    format!("{}…{}", &root[..10], &root[root.len() - 6..])
}

pub(crate) async fn jobs(args: JobsArgs, json: bool) -> Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    if args.mine {
        query.push(("researcher", args.wallet.address()?.to_string()));
    }
    for (key, value) in [
        ("researcher", &args.researcher),
        ("owner", &args.owner),
        ("dataset", &args.dataset),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    let jobs = page::<JobView>(&args.indexer, "jobs", &query).await?;
    let Some(items) = listing(jobs, "jobs", json, Job::from_indexer)? else {
        return Ok(());
    };
    println!(
        "{:>6}  {:<10} {:>7} {:>14}  dataset",
        "job", "state", "epochs", "escrow"
    );
    for j in items {
        let escrow = j.escrow.parse::<u128>().unwrap_or(0);
        println!(
            "{:>6}  {:<10} {:>7} {:>14}  {}",
            j.id,
            j.state.to_ascii_lowercase(),
            j.epochs,
            format_wei(escrow),
            j.dataset_root
        );
    }
    Ok(())
}

/// States after which a job never changes.
const TERMINAL: [&str; 4] = ["completed", "failed", "expired", "reclaimed"];

/// `licen job ID --watch`: polls the indexer's `/jobs/{id}` and prints each new transition as
/// it is indexed, until the job reaches a terminal state. A job the indexer has not caught up
/// with yet is waited for; a timeline that shrinks (a reorg was rewound) is said so and
/// followed from where the new branch stands.
pub(crate) async fn watch_job(id: u64, indexer: &str, json: bool) -> Result<()> {
    let url = format!("{}/jobs/{id}", indexer.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let mut printed = 0usize;
    let mut waiting_since = std::time::Instant::now();
    loop {
        let response = http.get(&url).send().await.with_context(|| {
            format!("could not reach the indexer at {indexer}: is `licen dev` running?")
        })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            // On-chain already (checked by the caller); the indexer will catch up.
            if waiting_since.elapsed() > std::time::Duration::from_secs(60) {
                bail!(
                    "the indexer at {indexer} has not indexed job {id} after 60 s: is it following this contract?"
                );
            }
        } else {
            let detail: JobDetail = serde_json::from_value(answer(response).await?)
                .context("the indexer answered a malformed job")?;
            waiting_since = std::time::Instant::now();
            let timeline = &detail.timeline;
            if timeline.len() < printed {
                eprintln!("(a chain reorganisation was rewound; following the new branch)");
                printed = timeline.len();
            }
            for step in &timeline[printed..] {
                let step = JobTransition::from_indexer(id, step)?;
                if json {
                    output::print_line(&step);
                } else {
                    println!(
                        "job {id}  {:<10} block {:<8} {}  tx {}",
                        step.state,
                        step.block,
                        crate::onchain::date(step.at),
                        step.tx
                    );
                }
            }
            printed = timeline.len();
            let state = detail.job.state.to_ascii_lowercase();
            let last = timeline.last().map(|t| t.state.to_ascii_lowercase());
            if TERMINAL.contains(&state.as_str()) && last.as_deref() == Some(state.as_str()) {
                if !json && state == "completed" {
                    println!(
                        "job {id} completed: {} trained; fetch the result with `licen download {id} -o DIR`",
                        crate::onchain::epochs_text(detail.job.actual_epochs.unwrap_or(0))
                    );
                }
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_drive_the_terminal() {
        assert_eq!(clip("plain name", 28), "plain name");
        assert_eq!(clip("red\u{1b}[31mname", 28), "red?[31mname");
        assert_eq!(clip("a\u{202E}b\nc", 28), "a?b?c");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
    }
}
