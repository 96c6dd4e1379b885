//! nginx basic-auth users as an htpasswd file of SHA-512 crypt hashes, never the passwords.
//!
//! `user:$6$<salt>$<hash>` is the SHA-crypt scheme of Ulrich Drepper
//! (<https://www.akkadia.org/drepper/SHA-crypt.txt>) with its default 5000 rounds, which nginx
//! checks through glibc's crypt(3) (`auth_basic_user_file`,
//! <https://nginx.org/en/docs/http/ngx_http_auth_basic_module.html>) and `openssl passwd -6`
//! computes too. Owns the hashing and the salt; which users exist and how their names are checked
//! is `portal`.

use sha2::{Digest as _, Sha256};

/// The characters of a crypt salt, in crypt's own base-64 order.
const SALT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The htpasswd file for `users` (name, password) of `host`: one `name:$6$salt$hash` line each.
pub fn file(host: &str, users: &[(String, String)]) -> String {
    users
        .iter()
        .map(|(user, password)| format!("{user}:{}\n", hash(password, &salt(host, user))))
        .collect()
}

/// The salt of `user` on `host`: 16 characters (SHA-crypt's maximum) of [`SALT_ALPHABET`] from
/// sha256 of a fixed label, the host and the user name.
///
/// Derived, not random, because builds are reproducible: the same profile gives the same bytes.
/// It still does what a salt is for: two users, or one user on two hosts, get different hashes
/// for the same password, and no table computed before this label existed applies. It is never
/// derived from the password, which would give equal passwords equal salts (and hashes).
fn salt(host: &str, user: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"infragen htpasswd salt v1\0")
        .chain_update(host.as_bytes())
        .chain_update(b"\0")
        .chain_update(user.as_bytes())
        .finalize();
    // 256 is a multiple of 64: every character is equally likely.
    digest[..16]
        .iter()
        .map(|b| char::from(SALT_ALPHABET[usize::from(b % 64)]))
        .collect()
}

/// `$6$<salt>$<hash>` of `password`, 5000 rounds (the default, so not written out).
fn hash(password: &str, salt: &str) -> String {
    let params = sha_crypt::Sha512Params::default();
    let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
        .expect("the default rounds are valid and crypt's base 64 is ASCII");
    format!("$6${salt}${hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's test vectors at the default rounds (`rounds=5000` is the same
    /// computation; the second salt is the 16-character cut of `toolongsaltstring`).
    #[test]
    fn matches_the_specification() {
        let cases = [
            (
                "saltstring",
                "Hello world!",
                "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            ),
            (
                "toolongsaltstrin",
                "This is just a test",
                "$6$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
            ),
        ];
        for (salt, password, want) in cases {
            assert_eq!(hash(password, salt), want);
        }
    }

    #[test]
    fn salts_are_fixed_per_host_and_user_and_never_the_password() {
        let a = salt("10.10.10.10", "admin");
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| SALT_ALPHABET.contains(&c)), "{a}");
        assert_eq!(a, salt("10.10.10.10", "admin"));
        assert_ne!(a, salt("10.10.10.11", "admin"));
        assert_ne!(a, salt("10.10.10.10", "ops"));
        // The label separates host and user: ("a", "bc") and ("ab", "c") differ.
        assert_ne!(salt("a", "bc"), salt("ab", "c"));

        let users = [
            ("admin".to_owned(), "pigsty".to_owned()),
            ("ops".to_owned(), "pigsty".to_owned()),
        ];
        let text = file("10.10.10.10", &users);
        assert!(!text.contains("pigsty"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&format!("admin:$6${a}$")), "{text}");
        // The same password, two different hashes.
        let hashes: Vec<&str> = lines.iter().map(|l| l.split_once(':').unwrap().1).collect();
        assert_ne!(hashes[0], hashes[1]);
        assert_eq!(text, file("10.10.10.10", &users), "deterministic");
    }
}
