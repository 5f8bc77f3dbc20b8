//! Runs every block of `t/*.t` as one trial: `cargo test --test t -- shdict`
//! runs the blocks of t/shdict.t, `-- 'shdict::TEST 3:'` a single one.

mod harness;

use harness::Settings;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::process::ExitCode;
use std::sync::Arc;

/// Blocks mostly wait on nginx, so run more of them than there are cores
/// (unless `--test-threads` or RUST_TEST_THREADS says otherwise).
const DEFAULT_THREADS: usize = 6;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        // libtest-mimic does not read RUST_TEST_THREADS itself.
        let from_env = std::env::var("RUST_TEST_THREADS").ok();
        args.test_threads = Some(
            from_env
                .and_then(|n| n.parse().ok())
                .unwrap_or(DEFAULT_THREADS),
        );
    }
    let files = match harness::load_t_files(&harness::t_dir()) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    for note in files.iter().flat_map(|file| &file.notes) {
        eprintln!("{note}");
    }
    let only = files
        .iter()
        .flat_map(|file| &file.blocks)
        .any(|block| block.has_section("ONLY"));
    if only {
        eprintln!();
        eprintln!("**************************************************************");
        eprintln!("*** NOTE: blocks with --- ONLY exist; all others are skipped ***");
        eprintln!("**************************************************************");
        eprintln!();
    }
    let settings = Arc::new(Settings::from_env());
    let trials = files
        .into_iter()
        .flat_map(|file| file.blocks)
        .map(|block| {
            let settings = Arc::clone(&settings);
            Trial::ignorable_test(block.trial_name(), move || {
                if only && !block.has_section("ONLY") {
                    return Ok(Completion::ignored_with("another block has --- ONLY"));
                }
                if let Some(reason) = harness::skip_reason(&block, &settings) {
                    return Ok(Completion::ignored_with(reason));
                }
                harness::run_block(&block, &settings)
                    .map(|()| Completion::Completed)
                    .map_err(|failure| Failed::from(failure.message))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
