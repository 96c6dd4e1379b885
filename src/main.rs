//! `infragen`: compile a Pigsty-style INFRA inventory into immutable, validated, per-host artifacts.
//!
//! `main` only hands the arguments to [`cli::run`] and exits with the code it returns.

mod cli;
mod keypath;
mod params;
mod plan;
mod problem;
mod profile;
mod render;
mod tree;
mod validate;

fn main() {
    std::process::exit(cli::run(std::env::args_os()));
}
