//! The `infragen` binary: hands the arguments to [`infragen::cli::run`] and exits with its code.

fn main() {
    std::process::exit(infragen::cli::run(std::env::args_os()));
}
