//! The shared part of `tests/fuzz.rs` (fast) and `tests/fuzz_integration.rs` (extraction of
//! bundles built from Debian's packages): the seed, the number of rounds, byte mutations, and
//! keeping a failing input.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use super::common::Rng;

pub fn seed() -> u64 {
    let seed = std::env::var("INFRAGEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1f2e_3d4c_5b6a);
    eprintln!("fuzz seed {seed} (replay with INFRAGEN_SEED={seed})");
    seed | 1
}

pub fn rounds(default: usize) -> usize {
    std::env::var("INFRAGEN_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Keeps a failing input for the record and returns where.
pub fn keep(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(name);
    let _ = fs::write(&path, bytes);
    path
}

/// One byte-level mutation.
pub fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    const INTERESTING: &[u8] = &[0, 0xff, 0x7f, 0x80, b'/', b'.', b'0', b'9', b' ', b'\n'];
    let at = rng.below(bytes.len().max(1));
    match rng.below(6) {
        0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
        1 if !bytes.is_empty() => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
        2 => bytes.truncate(at),
        3 => {
            let n = 1 + rng.below(16);
            let junk: Vec<u8> = (0..n).map(|_| rng.next().to_le_bytes()[0]).collect();
            bytes.splice(at.min(bytes.len())..at.min(bytes.len()), junk);
        }
        4 if !bytes.is_empty() => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            let chunk = bytes[at..end].to_vec();
            let to = rng.below(bytes.len());
            bytes.splice(to..to, chunk);
        }
        _ if !bytes.is_empty() => {
            // A digit somewhere: sizes and modes in ar and tar headers are ASCII numbers.
            bytes[at] = b"0123456789"[rng.below(10)];
        }
        _ => bytes.push(rng.next().to_le_bytes()[0]),
    }
}
