//! A portal entry's `config`: raw nginx text rendered inside that entry's `server { ... }`.
//!
//! `nginx -t` checks syntax, not intent (docs/reliability.md): it accepts a snippet that closes
//! the server block and opens another. So the text is read the way nginx reads it
//! ([`nginx_lex`](super::nginx_lex)) and every directive is held to an allow-list of directives
//! that configure this server's HTTP handling and name no file outside the web roots. What is
//! allowed and why: docs/portal-config.md. Owns that policy, not the syntax.

use super::nginx_lex::{self, Directive};
use crate::plan::check;

/// Simple directives (ending with `;`) allowed in the server block and inside `location`.
/// None names a file to load or write, and none opens a server: the list is the boundary, so a
/// directive joins it only after reading what it does with its arguments.
const SIMPLE: &[&str] = &[
    // proxying; not the ones naming files (`proxy_ssl_certificate*`, `proxy_store`,
    // `proxy_temp_path`) or needing `http`-level zones (`proxy_cache*`)
    "proxy_pass",
    "proxy_set_header",
    "proxy_hide_header",
    "proxy_pass_header",
    "proxy_ignore_headers",
    "proxy_http_version",
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_send_timeout",
    "proxy_buffering",
    "proxy_request_buffering",
    "proxy_buffer_size",
    "proxy_buffers",
    "proxy_busy_buffers_size",
    "proxy_max_temp_file_size",
    "proxy_temp_file_write_size",
    "proxy_redirect",
    "proxy_cookie_domain",
    "proxy_cookie_path",
    "proxy_cookie_flags",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_intercept_errors",
    "proxy_method",
    "proxy_pass_request_body",
    "proxy_pass_request_headers",
    "proxy_set_body",
    "proxy_ssl_server_name",
    "proxy_ssl_name",
    "proxy_ssl_protocols",
    "proxy_ssl_ciphers",
    "proxy_ssl_session_reuse",
    "proxy_socket_keepalive",
    "proxy_force_ranges",
    "proxy_limit_rate",
    "proxy_headers_hash_max_size",
    "proxy_headers_hash_bucket_size",
    "resolver",
    "resolver_timeout",
    // headers and response bodies
    "add_header",
    "add_trailer",
    "expires",
    "etag",
    "if_modified_since",
    "default_type",
    "charset",
    "charset_types",
    "override_charset",
    "source_charset",
    "sub_filter",
    "sub_filter_once",
    "sub_filter_types",
    "sub_filter_last_modified",
    "gzip",
    "gzip_types",
    "gzip_min_length",
    "gzip_comp_level",
    "gzip_vary",
    "gzip_proxied",
    "gzip_buffers",
    "gzip_disable",
    "gzip_http_version",
    "gzip_static",
    "gunzip",
    "chunked_transfer_encoding",
    "server_tokens",
    // routing
    "rewrite",
    "return",
    "break",
    "try_files",
    "error_page",
    "internal",
    "absolute_redirect",
    "port_in_redirect",
    // static files, under a checked `root`
    "root",
    "index",
    "autoindex",
    "autoindex_exact_size",
    "autoindex_localtime",
    "autoindex_format",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "directio",
    "output_buffers",
    "aio",
    "log_not_found",
    "access_log",
    // request limits
    "client_max_body_size",
    "client_body_buffer_size",
    "client_body_timeout",
    "client_header_timeout",
    "send_timeout",
    "keepalive_timeout",
    "limit_rate",
    "limit_rate_after",
    // access
    "allow",
    "deny",
    "auth_basic",
    "satisfy",
];

/// What `limit_except` may hold.
const LIMIT_EXCEPT: &[&str] = &["allow", "deny", "auth_basic"];

/// Where a directive sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Server,
    /// Inside `location`; `proxied` when that location has `proxy_pass`.
    Location {
        proxied: bool,
    },
}

/// Directories `root` may point into: the nginx home and the entry's own `path`.
pub(super) struct Roots<'a> {
    /// `nginx_home`.
    pub home: &'a str,
    /// The entry's `path`, if it serves one.
    pub path: Option<&'a str>,
}

/// Every problem of `text` as an entry's `config`, each message naming the config line.
pub(super) fn check(text: &str, roots: &Roots) -> Vec<String> {
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return vec![format!("control character {c:?} is not allowed")];
    }
    let tokens = match nginx_lex::tokenize(text) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    // The renderer indents every line of `config`: a raw line break inside a value would
    // change the value. `\n` says the same and survives.
    if let Some(t) = tokens.iter().find(|t| t.last_line != t.line) {
        return vec![format!(
            "line {}: a value spans lines; write `\\n` for a line break inside it",
            t.line
        )];
    }
    match nginx_lex::parse_tokens(tokens) {
        Ok(directives) => {
            let mut c = Checker {
                roots,
                tainted_by: tainting_rewrite(&directives, Context::Server),
                problems: Vec::new(),
            };
            c.block(&directives, Context::Server);
            c.problems
        }
        Err(e) => vec![e.to_string()],
    }
}

/// The walk over a parsed `config`, collecting problems.
struct Checker<'a> {
    roots: &'a Roots<'a>,
    /// The line of a `rewrite` that sets `$uri` from other variables, if any: then `$uri`
    /// itself may spell `..` (see [`upstream_rewrite`]).
    tainted_by: Option<usize>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn block(&mut self, ds: &[Directive], ctx: Context) {
        for d in ds {
            let problem = match (d.name.as_str(), &d.block) {
                ("location", Some(inner)) => {
                    self.block(inner, location(inner));
                    None
                }
                ("limit_except", Some(inner)) => {
                    limit_except(inner, &mut self.problems);
                    None
                }
                ("types", Some(inner)) => {
                    types(inner, &mut self.problems);
                    None
                }
                ("location" | "limit_except" | "types", None) => {
                    Some(format!("`{}` needs a `{{ ... }}` block", d.name))
                }
                (name, block) if SIMPLE.contains(&name) => {
                    if block.is_some() {
                        Some(format!("`{name}` takes no `{{ ... }}` block"))
                    } else {
                        self.arguments(d, ctx).err()
                    }
                }
                (name, _) => Some(not_allowed(name)),
            };
            if let Some(m) = problem {
                self.problems.push(format!("line {}: {m}", d.line));
            }
        }
    }

    /// The argument rules of the directives that reach files or URIs.
    fn arguments(&self, d: &Directive, ctx: Context) -> Result<(), String> {
        let name = d.name.as_str();
        let uri = |arg: &str| uri(name, arg, self.tainted_by);
        match name {
            "root" => root(d, self.roots),
            "access_log" if d.args != ["off"] => Err(
                "`access_log` may only be `off` here; the entry's `log` key names its log file"
                    .to_owned(),
            ),
            "try_files" => d
                .args
                .iter()
                .filter(|a| !a.starts_with('=') && !a.starts_with('@'))
                .try_for_each(|a| uri(a)),
            "index" => d.args.iter().try_for_each(|a| uri(a)),
            "error_page" => match d.args.last() {
                Some(a) if !a.starts_with('@') && !a.contains("://") => uri(a),
                _ => Ok(()),
            },
            "rewrite" if !redirect(d) && !upstream_rewrite(d, ctx) => {
                uri(d.args.get(1).map_or("", String::as_str)).map_err(|m| {
                    format!(
                        "{m}; an internal `rewrite` that may reach files takes no other variables \
                         (use `break` in a location with `proxy_pass`, or a redirect)"
                    )
                })
            }
            _ => Ok(()),
        }
    }
}

/// The context inside a `location` holding `inner`.
fn location(inner: &[Directive]) -> Context {
    Context::Location {
        proxied: inner.iter().any(|i| i.name == "proxy_pass"),
    }
}

/// A `rewrite` that answers with a redirect: its target goes to the client, not to a file.
fn redirect(d: &Directive) -> bool {
    let replacement = d.args.get(1).map_or("", String::as_str);
    matches!(
        d.args.get(2).map(String::as_str),
        Some("redirect" | "permanent")
    ) || ["http://", "https://", "$scheme://"]
        .iter()
        .any(|p| replacement.starts_with(p))
}

/// A `rewrite ... break` in a location with `proxy_pass`: the request stays in that location
/// and its URI goes upstream, never becoming a file path, so its replacement is free. It does
/// set `$uri`, though, which then no longer is nginx's normalised path.
fn upstream_rewrite(d: &Directive, ctx: Context) -> bool {
    d.args.get(2).map(String::as_str) == Some("break") && ctx == Context::Location { proxied: true }
}

/// The line of the first free `rewrite` ([`upstream_rewrite`]) that builds `$uri` from other
/// variables.
fn tainting_rewrite(ds: &[Directive], ctx: Context) -> Option<usize> {
    ds.iter().find_map(|d| match &d.block {
        Some(inner) if d.name == "location" => tainting_rewrite(inner, location(inner)),
        Some(_) => None,
        None => {
            let replacement = d.args.get(1).map_or("", String::as_str);
            (d.name == "rewrite"
                && !redirect(d)
                && upstream_rewrite(d, ctx)
                && variables(replacement).iter().any(|v| v != "uri"))
            .then_some(d.line)
        }
    })
}

fn not_allowed(name: &str) -> String {
    let hint = if name == "alias" {
        "; use `root`, which appends the request path and so cannot be escaped with `..`"
    } else {
        ""
    };
    format!(
        "directive `{name}` is not allowed in a portal entry's config \
         (docs/portal-config.md lists the allowed ones){hint}"
    )
}

fn limit_except(inner: &[Directive], problems: &mut Vec<String>) {
    for d in inner {
        if !LIMIT_EXCEPT.contains(&d.name.as_str()) || d.block.is_some() {
            problems.push(format!(
                "line {}: directive `{}` is not allowed inside `limit_except` (only `allow`, `deny`, `auth_basic`)",
                d.line, d.name
            ));
        }
    }
}

/// `types { mime/type ext ...; }`: entries, not directives; nothing nested. nginx reads an
/// `include file;` line there as an include, so that name is no type.
fn types(inner: &[Directive], problems: &mut Vec<String>) {
    for d in inner {
        if d.name == "include" {
            problems.push(format!("line {}: {}", d.line, not_allowed("include")));
        } else if d.block.is_some() || d.args.is_empty() {
            problems.push(format!(
                "line {}: `types` holds `type extension ...;` entries, found `{}`",
                d.line, d.name
            ));
        }
    }
}

/// `root`: one safe absolute path inside the nginx home or the entry's `path`.
fn root(d: &Directive, roots: &Roots) -> Result<(), String> {
    let [dir] = d.args.as_slice() else {
        return Err("`root` takes one directory".to_owned());
    };
    check::abs_path(dir).map_err(|m| format!("`root`: {m}"))?;
    let within = |base: &str| {
        let base = base.trim_end_matches('/');
        dir == base || dir.starts_with(&format!("{base}/"))
    };
    let bases: Vec<&str> = std::iter::once(roots.home)
        .chain(roots.path)
        .filter(|b| !b.is_empty())
        .collect();
    if bases.iter().any(|b| within(b)) {
        return Ok(());
    }
    let listed: Vec<String> = bases.iter().map(|b| format!("`{b}`")).collect();
    Err(format!(
        "`root {dir}` is outside the nginx home and this entry's path ({})",
        listed.join(", ")
    ))
}

/// A URI or file name that nginx joins to the root: no `..`, and no variable but `$uri`
/// (already normalised by nginx; others, captures included, can spell `..`), and not even
/// `$uri` once a `rewrite` (on line `tainted_by`) has built it from other variables.
fn uri(name: &str, arg: &str, tainted_by: Option<usize>) -> Result<(), String> {
    if arg.contains("..") {
        return Err(format!("`..` is not allowed in `{name}` (`{arg}`)"));
    }
    let vars = variables(arg);
    if let Some(v) = vars.iter().find(|v| *v != "uri") {
        return Err(format!(
            "`{name}` may use only the variable `$uri` here, found `${v}`"
        ));
    }
    match tainted_by {
        Some(line) if !vars.is_empty() => Err(format!(
            "`{name}` may not use `$uri` here: the `rewrite` on line {line} builds it from other variables"
        )),
        _ => Ok(()),
    }
}

/// The names of the variables in `arg` (`$name`, `${name}`); an empty name for a lone `$`.
fn variables(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = if let Some(braced) = rest.strip_prefix('{') {
            braced.chars().take_while(|c| *c != '}').collect()
        } else {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests;
