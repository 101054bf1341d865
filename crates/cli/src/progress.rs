//! Progress bars for anything that can take over a second; hidden under `--json` or when
//! stderr is not a terminal, so scripts get clean output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use licen_storage::store::{Phase, Progress, ProgressFn};
use std::sync::Arc;

/// A byte-counting bar labelled `label`.
pub(crate) fn bytes_bar(label: &str, total: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}

/// A storage progress callback driving one bar across the hashing/upload/download phases.
pub(crate) fn storage_progress(bar: &ProgressBar) -> ProgressFn {
    let bar = bar.clone();
    Arc::new(move |p: Progress| {
        let label = match p.phase {
            Phase::Hashing => "hashing",
            Phase::Uploading => "uploading",
            Phase::Downloading => "downloading",
        };
        bar.set_message(label);
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
}
