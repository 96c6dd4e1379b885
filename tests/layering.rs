//! The structure of `src/` (docs/architecture.md), checked from the source text (fast tier):
//!
//! - **layers**: every top-level module is listed in the layer order of docs/architecture.md,
//!   and a module refers (`crate::m`, `use crate::{m, …}`, a `super::` chain that reaches the
//!   crate root) only to modules listed *below* it;
//! - **function length**: no `fn` in `src/` is longer than 100 lines (docs/style.md aims at
//!   about 80), counted from the line of `fn` to the line of its closing brace.
//!
//! Comments, string and character literals are blanked before either check, so a doc link or a
//! message that mentions `crate::x` is not an import.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The longest function `src/` may hold, in lines.
const MAX_FN_LINES: usize = 100;

/// The source text with comments, string and character literals replaced by spaces (newlines
/// kept, so line numbers stay right).
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        // Line comment.
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        // Block comment (they nest).
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        let prev_ident = i > 0 && ident(c[i - 1]);
        // Raw strings: r"…", r#"…"#, br"…", cr"…".
        if !prev_ident
            && (c[i] == 'r' || ((c[i] == 'b' || c[i] == 'c') && c.get(i + 1) == Some(&'r')))
        {
            let mut j = if c[i] == 'r' { i + 1 } else { i + 2 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                for &ch in &c[i..=j] {
                    out.push(ch);
                }
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                        out.push('"');
                        out.extend(std::iter::repeat_n('#', hashes));
                        j += 1 + hashes;
                        break;
                    }
                    blank(&mut out, c[j]);
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        // Strings: "…", b"…", c"…".
        if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
            continue;
        }
        // Character literals ('x', '\n', '\u{1F600}'); a lifetime ('a) is left alone.
        if c[i] == '\'' {
            let end = if c.get(i + 1) == Some(&'\\') {
                // Past the escaped character: `'\''` ends at the third quote.
                (i + 3..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push('\'');
                for &ch in &c[i + 1..end] {
                    blank(&mut out, ch);
                }
                out.push('\'');
                i = end + 1;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`), and
/// how many `super::` reach the crate root from it.
fn module_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.last()?.trim_end_matches(".rs").to_owned();
    if parts.len() == 1 && (last == "lib" || last == "main") {
        return None;
    }
    let depth = if last == "mod" {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((parts[0].trim_end_matches(".rs").to_owned(), depth))
}

/// The layer order of docs/architecture.md: the numbered list of `` `module` `` lines, bottom
/// first.
fn layers() -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let start = doc
        .find("<!-- layers:begin -->")
        .expect("docs/architecture.md: no `<!-- layers:begin -->` marker");
    let end = doc
        .find("<!-- layers:end -->")
        .expect("docs/architecture.md: no `<!-- layers:end -->` marker");
    doc[start..end]
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(". `")?;
            n.trim().parse::<u32>().ok()?;
            Some(rest.split('`').next()?.to_owned())
        })
        .collect()
}

/// The identifier starting at `i` in `c`, if any.
fn ident_at(c: &[char], i: usize) -> Option<String> {
    let s: String = c[i.min(c.len())..]
        .iter()
        .take_while(|ch| ch.is_alphanumeric() || **ch == '_')
        .collect();
    (!s.is_empty()).then_some(s)
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The crate-root names `code` refers to, with their 1-based line: `crate::m`, the first names
/// of `crate::{m, n::x}`, and `super::…::m` whose chain of `super` reaches the root.
fn root_refs(code: &str, depth: usize) -> Vec<(usize, String)> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let mut refs = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let boundary =
            i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_' || c[i - 1] == ':');
        let Some(word) = boundary.then(|| ident_at(&c, i)).flatten() else {
            i += 1;
            continue;
        };
        let mut j = i + word.chars().count();
        let at_root = match word.as_str() {
            "crate" => true,
            "super" => {
                let mut supers = 1;
                loop {
                    let k = skip_ws(&c, j);
                    if c.get(k) == Some(&':')
                        && c.get(k + 1) == Some(&':')
                        && ident_at(&c, skip_ws(&c, k + 2)).as_deref() == Some("super")
                    {
                        j = skip_ws(&c, k + 2) + "super".len();
                        supers += 1;
                    } else {
                        break;
                    }
                }
                supers >= depth
            }
            _ => false,
        };
        if !at_root {
            i = j;
            continue;
        }
        let k = skip_ws(&c, j);
        if !(c.get(k) == Some(&':') && c.get(k + 1) == Some(&':')) {
            i = j;
            continue;
        }
        let k = skip_ws(&c, k + 2);
        if c.get(k) == Some(&'{') {
            // The first name of each top-level item of the group.
            let mut d = 0;
            let mut expect = true;
            let mut m = k;
            while m < c.len() {
                match c[m] {
                    '{' => {
                        d += 1;
                        expect = d == 1;
                    }
                    '}' => {
                        d -= 1;
                        if d == 0 {
                            break;
                        }
                    }
                    ',' if d == 1 => expect = true,
                    ch if expect && (ch.is_alphanumeric() || ch == '_') => {
                        let name = ident_at(&c, m).unwrap();
                        m += name.chars().count();
                        refs.push((line_of(m), name));
                        expect = false;
                        continue;
                    }
                    _ => {}
                }
                m += 1;
            }
            i = m;
        } else if let Some(name) = ident_at(&c, k) {
            i = k + name.chars().count();
            refs.push((line_of(k), name));
        } else {
            i = k;
        }
    }
    refs
}

/// Every reference in `src/` from a module to a module listed above it (file, line, both modules
/// and their layers); plus modules missing from the order.
fn layering_violations(order: &[String], files: &[(PathBuf, String)]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i + 1))
        .collect();
    let mut bad = Vec::new();
    for (rel, text) in files {
        let Some((module, depth)) = module_of(rel) else {
            continue;
        };
        let Some(&own) = rank.get(module.as_str()) else {
            bad.push(format!(
                "src/{}: module `{module}` is not in the layer order of docs/architecture.md",
                rel.display()
            ));
            continue;
        };
        for (line, target) in root_refs(&code_only(text), depth) {
            if target == module {
                continue;
            }
            // Names that are not modules (`crate::Result` re-exports, macros) are not layers.
            let Some(&theirs) = rank.get(target.as_str()) else {
                continue;
            };
            if theirs > own {
                bad.push(format!(
                    "src/{}:{line}: `{module}` (layer {own}) imports `{target}` (layer {theirs}), \
                     a higher layer",
                    rel.display()
                ));
            }
        }
    }
    bad
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = src();
    rust_files(&root)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(&root).unwrap().to_path_buf(), text)
        })
        .collect()
}

#[test]
fn no_module_imports_a_higher_layer() {
    let order = layers();
    assert!(
        order.len() > 10,
        "docs/architecture.md lists only {order:?} between the layer markers"
    );
    let files = sources();
    let mut top: Vec<String> = files
        .iter()
        .filter_map(|(rel, _)| module_of(rel).map(|(m, _)| m))
        .collect();
    top.sort();
    top.dedup();
    let mut problems: Vec<String> = top
        .iter()
        .filter(|m| !order.contains(m))
        .map(|m| format!("module `{m}` is not in the layer order of docs/architecture.md"))
        .collect();
    problems.extend(
        order
            .iter()
            .filter(|m| !top.contains(m))
            .map(|m| format!("docs/architecture.md lists `{m}`, which is not a module of src/")),
    );
    problems.extend(layering_violations(&order, &files));
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} layering problem(s) (docs/architecture.md):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every `fn` of `code` (blanked by [`code_only`]) with a body: name, first line, line count.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < c.len() {
        let boundary = i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if !(boundary && c[i] == 'f' && c[i + 1] == 'n' && c[i + 2].is_whitespace()) {
            i += 1;
            continue;
        }
        let Some(name) = ident_at(&c, skip_ws(&c, i + 2)) else {
            i += 2;
            continue;
        };
        // The signature ends at the body's `{` or at `;` (no body), outside parentheses.
        let mut j = i + 2;
        let mut parens = 0i32;
        while j < c.len() {
            match c[j] {
                '(' | '[' => parens += 1,
                ')' | ']' => parens -= 1,
                '{' | ';' if parens == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if c.get(j) != Some(&'{') {
            i = j;
            continue;
        }
        let mut depth = 0;
        let mut k = j;
        while k < c.len() {
            match c[k] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        let first = line_of(i);
        out.push((name, first, line_of(k) - first + 1));
        // Nested functions are measured too: continue inside the body.
        i = j + 1;
    }
    out
}

/// Every function of `files` longer than `max` lines, as `file:line: fn name: n lines`.
fn long_functions(files: &[(PathBuf, String)], max: usize) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, text) in files {
        for (name, line, len) in functions(&code_only(text)) {
            if len > max {
                bad.push(format!(
                    "src/{}:{line}: fn {name}: {len} lines",
                    rel.display()
                ));
            }
        }
    }
    bad
}

#[test]
fn no_function_is_longer_than_100_lines() {
    let bad = long_functions(&sources(), MAX_FN_LINES);
    let mut msg = String::new();
    for b in &bad {
        let _ = writeln!(msg, "{b}");
    }
    assert!(
        bad.is_empty(),
        "{} function(s) in src/ longer than {MAX_FN_LINES} lines (split them by meaning; \
         docs/architecture.md):\n{msg}",
        bad.len()
    );
}

// The checks themselves must be able to fail: they run on made-up sources here.

fn fake(files: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect()
}

#[test]
fn a_higher_import_is_reported_with_file_line_and_both_modules() {
    let order: Vec<String> = ["tree", "plan", "render"].map(str::to_owned).to_vec();
    let files = fake(&[
        ("tree.rs", "//! Trees.\n\nuse crate::render::x; // upward\n"),
        (
            "plan/mod.rs",
            "use crate::tree::Tree;\n/// see [`crate::render`]\nfn f() -> &'static str { \"crate::render\" }\n",
        ),
        ("plan/ports.rs", "use crate::{\n    tree,\n    render::{a, b},\n};\n"),
        ("render/mod.rs", "use crate::plan;\nmod x { fn g() { super::super::tree::f(); } }\n"),
        ("render/net.rs", "fn h() { super::super::plan::y(); let c = '{'; }\n"),
        ("plan/deep/inner.rs", "fn i() { super::super::super::render::z(); }\n"),
    ]);
    assert_eq!(
        layering_violations(&order, &files),
        [
            "src/tree.rs:3: `tree` (layer 1) imports `render` (layer 3), a higher layer",
            "src/plan/ports.rs:3: `plan` (layer 2) imports `render` (layer 3), a higher layer",
            "src/plan/deep/inner.rs:1: `plan` (layer 2) imports `render` (layer 3), a higher layer",
        ]
    );
    let unknown = fake(&[("extra.rs", "")]);
    assert_eq!(
        layering_violations(&order, &unknown),
        ["src/extra.rs: module `extra` is not in the layer order of docs/architecture.md"]
    );
}

#[test]
fn a_long_function_is_reported_and_strings_do_not_confuse_the_count() {
    let mut long = String::from(
        "fn short() { let s = \"}}}\"; let c = '}'; let q = ('\\'','{'); }\n\npub fn long(\n    a: u8,\n) -> u8 {\n",
    );
    for _ in 0..96 {
        long.push_str("    let _ = r#\"{\"#;\n");
    }
    long.push_str("    a\n}\n");
    let files = fake(&[("plan/mod.rs", &long)]);
    assert_eq!(
        long_functions(&files, 100),
        ["src/plan/mod.rs:3: fn long: 101 lines"]
    );
    assert!(long_functions(&files, 101).is_empty());
    let code = code_only(&long);
    assert_eq!(functions(&code)[0], ("short".to_owned(), 1, 1));
}
