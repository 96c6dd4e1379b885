//! The tier report (docs/tests.md): which test tiers this `cargo test` runs, and why the others
//! do not. Not a test harness: it prints, so the lines show in `cargo test`'s output, and a tier
//! that is not run is never counted as passed.

mod common;

use common::tier::{self, Tier};

fn main() {
    println!("==== infragen test tiers (docs/tests.md) ====");
    for t in Tier::ALL {
        match tier::chosen(t) {
            Ok(()) => println!("RUN     {:<12} needs {}", t.name(), t.needs()),
            Err(why) => println!("SKIPPED {:<12} {why}", t.name()),
        }
    }
    if common::shared_inventories().is_empty() {
        println!(
            "        fixtures     tests/fixtures/pigsty only (no ../shared/fixtures/pigsty beside the repository)"
        );
    } else {
        println!("        fixtures     tests/fixtures/pigsty and ../shared/fixtures/pigsty");
    }
}
