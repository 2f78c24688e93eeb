//! A walk through Twisted's "Introduction to Deferreds": for each pattern, the seed's Python, then
//! the synchronous Rust and the Deferred Rust as this crate runs them (the code printed is taken
//! from the source that runs, so it cannot drift), then both run side by side on an input that
//! succeeds and one that fails.
//!
//! Run it with `cargo run --example tour`.

use defer_examples::seed::{Input, Run, patterns};

/// Width of the left column of the side-by-side runs.
const LEFT: usize = 46;

fn block(heading: &str, code: &str) {
    println!("  {heading}");
    for line in code.lines() {
        if line.is_empty() {
            println!("    |");
        } else {
            println!("    | {line}");
        }
    }
}

/// The two runs in two columns: synchronous on the left, Deferred on the right.
fn side_by_side(sync: &Run, deferred: &Run) {
    let rows = |r: &Run| -> Vec<String> {
        let mut rows: Vec<String> = r.log.clone();
        rows.push(format!("=> {}", r.outcome));
        rows
    };
    let (left, right) = (rows(sync), rows(deferred));
    println!("    {:<LEFT$}   Deferred", "synchronous");
    println!("    {:<LEFT$}   --------", "-----------");
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).map_or("", String::as_str);
        let r = right.get(i).map_or("", String::as_str);
        println!("    {l:<LEFT$}   {r}");
    }
}

fn main() {
    let mut disagreements = 0;
    for (i, pattern) in patterns().iter().enumerate() {
        println!("{}. {}", i + 1, pattern.title);
        println!();
        block("Python (the seed):", pattern.python);
        println!();
        block("Rust, synchronous:", &pattern.sync_rust);
        println!();
        block("Rust, with Deferreds:", &pattern.deferred_rust);
        for input in [Input::Succeeds, Input::Fails] {
            let sync = (pattern.sync)(input);
            let deferred = (pattern.deferred)(input);
            let verdict = if sync == deferred {
                "they agree"
            } else {
                disagreements += 1;
                "they DISAGREE"
            };
            println!();
            println!(
                "  When the network {}: {verdict}",
                if input == Input::Succeeds {
                    "answers"
                } else {
                    "fails"
                }
            );
            side_by_side(&sync, &deferred);
        }
        println!();
        println!();
    }
    if disagreements > 0 {
        eprintln!("{disagreements} disagreement(s)");
        std::process::exit(1);
    }
    println!("Every pattern gives the same log and outcome, synchronous or with Deferreds.");
}
