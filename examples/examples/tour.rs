//! A walk through Twisted's "Introduction to Deferreds": each pattern as a synchronous Rust
//! program and as its Deferred translation, run on an input that succeeds and one that fails.
//!
//! Run it with `cargo run --example tour`.

use defer_examples::seed::{Input, patterns};

fn main() {
    let mut disagreements = 0;
    for (i, pattern) in patterns().iter().enumerate() {
        println!("{}. {}", i + 1, pattern.title);
        for line in pattern.python.lines() {
            println!("    | {line}");
        }
        for input in [Input::Succeeds, Input::Fails] {
            let sync = (pattern.sync)(input);
            let deferred = (pattern.deferred)(input);
            let verdict = if sync == deferred {
                "agree"
            } else {
                disagreements += 1;
                "DISAGREE"
            };
            println!(
                "  when the network {}:",
                if input == Input::Succeeds {
                    "answers"
                } else {
                    "fails"
                }
            );
            println!(
                "    synchronous: {:<28} log: {}",
                sync.outcome,
                sync.log.join("; ")
            );
            println!(
                "    Deferred:    {:<28} log: {}",
                deferred.outcome,
                deferred.log.join("; ")
            );
            println!("    -> they {verdict}");
        }
        println!();
    }
    if disagreements > 0 {
        eprintln!("{disagreements} disagreement(s)");
        std::process::exit(1);
    }
    println!("Every pattern gives the same outcome, synchronous or with Deferreds.");
}
