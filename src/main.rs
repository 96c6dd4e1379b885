//! The `infragen` binary: hands the arguments to [`infragen::cli::run`] and exits with its code.

/// mimalloc rather than glibc's allocator: a no-change rebuild makes and drops some hundred
/// thousand small values (rendered files, JSON documents), where glibc's malloc and free took
/// a fifth of its time; measured in docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(infragen::cli::run(std::env::args_os()));
}
