//! The nesting bound, checked on the text before the YAML parser sees it.
//!
//! libyaml (under `serde_yaml`) reads the whole text before `serde_yaml` applies its own
//! recursion limit, and on nested flow mappings its time grows with the square of the nesting:
//! 160 KB of `{a: {a: …` take 5 s, 400 KB minutes (400 KB of `[[[[…` over a second). So the
//! text is scanned first, the way libyaml's scanner splits it into tokens (`scanner.c` of libyaml 0.2,
//! as `unsafe-libyaml` carries it): comments, quoted, plain and block scalars are stepped over
//! exactly where libyaml steps over them, and every flow collection (`[`, `{`) and every block
//! indentation level libyaml would open is counted. It does not parse: once the text stops being
//! valid YAML, libyaml stops at that error and whatever the scan does afterwards no longer
//! matters. Owns only that count; the limits and the error text are in `bounds`.

/// Where the nesting first went past the limit: 1-based line and column (in characters), as
/// `serde_yaml` reports locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Scans `text` and fails at the first token that opens a level past `max`; otherwise returns
/// the deepest nesting seen (block levels plus flow levels).
pub fn check(text: &str, max: usize) -> Result<usize, TooDeep> {
    let mut scan = Scan {
        s: text.as_bytes(),
        pos: 0,
        line: 0,
        col: 0,
        flow: 0,
        indents: Vec::new(),
        keys: vec![None],
        key_allowed: true,
        max,
        deepest: 0,
    };
    scan.run()?;
    Ok(scan.deepest)
}

/// A possible simple key (libyaml's `yaml_simple_key_t`): where it starts.
#[derive(Debug, Clone, Copy)]
struct Key {
    pos: usize,
    line: usize,
    col: usize,
}

struct Scan<'t> {
    s: &'t [u8],
    /// Byte offset.
    pos: usize,
    /// 0-based line and column (columns count characters, as libyaml's marks do).
    line: usize,
    col: usize,
    /// libyaml's `flow_level`.
    flow: usize,
    /// libyaml's `indents` plus `indent`: the columns of the open block collections.
    indents: Vec<usize>,
    /// One possible simple key per flow level, plus one for the block context.
    keys: Vec<Option<Key>>,
    /// libyaml's `simple_key_allowed`.
    key_allowed: bool,
    max: usize,
    deepest: usize,
}

impl Scan<'_> {
    fn at(&self, k: usize) -> u8 {
        self.s.get(self.pos + k).copied().unwrap_or(0)
    }

    fn end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Length in bytes of the line break at `pos + k`, 0 when there is none. libyaml takes
    /// CR LF, CR, LF, NEL, LS and PS as breaks.
    fn brk(&self, k: usize) -> usize {
        match (self.at(k), self.at(k + 1), self.at(k + 2)) {
            (b'\r', b'\n', _) | (0xC2, 0x85, _) => 2,
            (b'\r' | b'\n', _, _) => 1,
            (0xE2, 0x80, 0xA8 | 0xA9) => 3,
            _ => 0,
        }
    }

    fn blank(&self, k: usize) -> bool {
        matches!(self.at(k), b' ' | b'\t')
    }

    /// Blank, break or the end of the text (libyaml's `IS_BLANKZ`).
    fn blankz(&self, k: usize) -> bool {
        self.blank(k) || self.brk(k) > 0 || self.pos + k >= self.s.len()
    }

    /// libyaml's `IS_ALPHA`: the characters of anchor names and tag handles.
    fn alpha(&self) -> bool {
        let c = self.at(0);
        c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
    }

    /// Steps over one character, or one line break.
    fn skip(&mut self) {
        let b = self.brk(0);
        if b > 0 {
            self.pos += b;
            self.line += 1;
            self.col = 0;
            return;
        }
        self.pos += 1;
        while self.pos < self.s.len() && self.s[self.pos] & 0xC0 == 0x80 {
            self.pos += 1;
        }
        self.col += 1;
    }

    fn skip_to_break(&mut self) {
        while !self.end() && self.brk(0) == 0 {
            self.skip();
        }
    }

    fn indent(&self) -> isize {
        self.indents
            .last()
            .map_or(-1, |&c| isize::try_from(c).unwrap_or(isize::MAX))
    }

    fn deeper(&mut self, line: usize, col: usize) -> Result<(), TooDeep> {
        let depth = self.indents.len() + self.flow;
        self.deepest = self.deepest.max(depth);
        if depth > self.max {
            return Err(TooDeep {
                line: line + 1,
                column: col + 1,
            });
        }
        Ok(())
    }

    /// libyaml's `roll_indent`: a block collection opens at `key`'s column.
    fn roll(&mut self, key: Key) -> Result<(), TooDeep> {
        if self.flow == 0 && self.indent() < isize::try_from(key.col).unwrap_or(isize::MAX) {
            self.indents.push(key.col);
            self.deeper(key.line, key.col)?;
        }
        Ok(())
    }

    /// libyaml's `unroll_indent`.
    fn unroll(&mut self, col: isize) {
        if self.flow > 0 {
            return;
        }
        while self.indent() > col {
            self.indents.pop();
        }
    }

    fn here(&self) -> Key {
        Key {
            pos: self.pos,
            line: self.line,
            col: self.col,
        }
    }

    fn save_key(&mut self) {
        if self.key_allowed {
            let key = self.here();
            *self.keys.last_mut().expect("one slot per level") = Some(key);
        }
    }

    fn remove_key(&mut self) {
        *self.keys.last_mut().expect("one slot per level") = None;
    }

    /// libyaml's `stale_simple_keys`: a key must end on its line, within 1024 characters.
    fn stale_keys(&mut self) {
        let (line, pos) = (self.line, self.pos);
        for key in &mut self.keys {
            if key.is_some_and(|k| k.line < line || k.pos + 1024 < pos) {
                *key = None;
            }
        }
    }

    /// libyaml's `scan_to_next_token`: blanks, comments and line breaks. Tabs are skipped
    /// everywhere; where libyaml refuses one, it stops with an error.
    fn skip_to_token(&mut self) {
        loop {
            if self.col == 0 && self.s[self.pos..].starts_with("\u{feff}".as_bytes()) {
                self.skip();
            }
            while self.blank(0) {
                self.skip();
            }
            if self.at(0) == b'#' {
                self.skip_to_break();
            }
            if self.brk(0) == 0 {
                return;
            }
            self.skip();
            if self.flow == 0 {
                self.key_allowed = true;
            }
        }
    }

    fn run(&mut self) -> Result<(), TooDeep> {
        loop {
            self.skip_to_token();
            self.stale_keys();
            self.unroll(isize::try_from(self.col).unwrap_or(isize::MAX));
            if self.end() {
                return Ok(());
            }
            self.token()?;
        }
    }

    fn token(&mut self) -> Result<(), TooDeep> {
        let c = self.at(0);
        let marker = |m: u8| (0..3).all(|k| self.at(k) == m) && self.blankz(3);
        if self.col == 0 && c == b'%' {
            self.skip_to_break(); // a directive is one line, or an error
            return Ok(());
        }
        if self.col == 0 && (marker(b'-') || marker(b'.')) {
            self.unroll(-1);
            self.remove_key();
            self.key_allowed = false;
            (0..3).for_each(|_| self.skip());
            return Ok(());
        }
        match c {
            b'[' | b'{' => {
                self.save_key();
                let at = self.here();
                self.flow += 1;
                self.keys.push(None);
                self.key_allowed = true;
                self.skip();
                self.deeper(at.line, at.col)
            }
            b']' | b'}' => {
                self.remove_key();
                if self.flow > 0 {
                    self.flow -= 1;
                    self.keys.pop();
                }
                self.key_allowed = false;
                self.skip();
                Ok(())
            }
            b',' => {
                self.remove_key();
                self.key_allowed = true;
                self.skip();
                Ok(())
            }
            b'-' if self.blankz(1) => {
                let at = self.here();
                self.roll(at)?;
                self.remove_key();
                self.key_allowed = true;
                self.skip();
                Ok(())
            }
            b'?' if self.flow > 0 || self.blankz(1) => {
                let at = self.here();
                self.roll(at)?;
                self.remove_key();
                self.key_allowed = self.flow == 0;
                self.skip();
                Ok(())
            }
            b':' if self.flow > 0 || self.blankz(1) => {
                let at = self.here();
                let key = self.keys.last_mut().expect("one slot per level").take();
                self.roll(key.unwrap_or(at))?;
                self.key_allowed = self.flow == 0;
                self.skip();
                Ok(())
            }
            b'*' | b'&' => {
                self.save_key();
                self.key_allowed = false;
                self.skip();
                while self.alpha() {
                    self.skip();
                }
                Ok(())
            }
            b'!' => {
                self.save_key();
                self.key_allowed = false;
                self.tag();
                Ok(())
            }
            b'|' | b'>' if self.flow == 0 => {
                self.remove_key();
                self.key_allowed = true;
                self.block_scalar();
                Ok(())
            }
            b'\'' | b'"' => {
                self.save_key();
                self.key_allowed = false;
                self.quoted(c);
                Ok(())
            }
            _ => {
                self.save_key();
                self.key_allowed = false;
                if self.plain() {
                    self.key_allowed = true;
                }
                Ok(())
            }
        }
    }

    /// A tag: `!<uri>` (where `,`, `[` and `]` are URI characters) or a shorthand `!h!suffix`
    /// (where they are not, so that `!t [a]` and `[!t a, b]` keep their brackets).
    fn tag(&mut self) {
        let verbatim = self.at(1) == b'<';
        self.skip();
        if verbatim {
            self.skip();
        }
        loop {
            let c = self.at(0);
            let uri = self.alpha()
                || b";/?:@&=+$.%!~*'()".contains(&c)
                || (verbatim && b",[]".contains(&c));
            if !uri || self.end() {
                break;
            }
            self.skip();
        }
        if verbatim && self.at(0) == b'>' {
            self.skip();
        }
    }

    /// A single- or double-quoted scalar, across lines; `''` and `\` escape.
    fn quoted(&mut self, quote: u8) {
        self.skip();
        while !self.end() {
            let c = self.at(0);
            if quote == b'\'' && c == b'\'' && self.at(1) == b'\'' {
                self.skip();
            } else if quote == b'"' && c == b'\\' {
                self.skip();
                if self.end() {
                    return;
                }
            } else if c == quote {
                self.skip();
                return;
            }
            self.skip();
        }
    }

    /// libyaml's `scan_plain_scalar`. Returns whether it ended after a line break (then a
    /// simple key may follow).
    fn plain(&mut self) -> bool {
        let indent = self.indent() + 1;
        let mut leading_blanks = false;
        loop {
            let marker = |m: u8| (0..3).all(|k| self.at(k) == m) && self.blankz(3);
            if self.col == 0 && (marker(b'-') || marker(b'.')) {
                break;
            }
            if self.at(0) == b'#' {
                break;
            }
            while !self.blankz(0) {
                let c = self.at(0);
                if (c == b':' && self.blankz(1))
                    || (self.flow > 0 && b",[]{}".contains(&c))
                    || (self.flow > 0 && c == b':' && b",?[]{}".contains(&self.at(1)))
                {
                    break;
                }
                self.skip();
            }
            if !(self.blank(0) || self.brk(0) > 0) {
                break;
            }
            while self.blank(0) || self.brk(0) > 0 {
                if self.brk(0) > 0 {
                    leading_blanks = true;
                }
                self.skip();
            }
            if self.flow == 0 && isize::try_from(self.col).unwrap_or(isize::MAX) < indent {
                break;
            }
        }
        leading_blanks
    }

    /// libyaml's `scan_block_scalar`: the header line, then every line indented at least as
    /// far as the content (given by an indentation indicator, or by the first non-empty line).
    fn block_scalar(&mut self) {
        self.skip();
        let mut increment = 0;
        for _ in 0..2 {
            match self.at(0) {
                b'+' | b'-' => self.skip(),
                c @ b'1'..=b'9' => {
                    increment = isize::from(c - b'0');
                    self.skip();
                }
                _ => break,
            }
        }
        // The rest of the header line is blanks and a comment (anything else is an error).
        self.skip_to_break();
        if self.end() {
            return;
        }
        self.skip();
        let mut indent = if increment == 0 {
            0
        } else if self.indent() >= 0 {
            self.indent() + increment
        } else {
            increment
        };
        self.block_breaks(&mut indent);
        while !self.end() && isize::try_from(self.col).unwrap_or(isize::MAX) == indent {
            self.skip_to_break();
            if self.end() {
                return;
            }
            self.skip();
            self.block_breaks(&mut indent);
        }
    }

    /// libyaml's `scan_block_scalar_breaks`: indentation and empty lines; settles an automatic
    /// indentation from the most indented of them.
    fn block_breaks(&mut self, indent: &mut isize) {
        let mut max_indent = 0;
        let col = |s: &Self| isize::try_from(s.col).unwrap_or(isize::MAX);
        loop {
            while (*indent == 0 || col(self) < *indent) && self.at(0) == b' ' {
                self.skip();
            }
            max_indent = max_indent.max(col(self));
            if self.brk(0) == 0 {
                break;
            }
            self.skip();
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent() + 1).max(1);
        }
    }
}

#[cfg(test)]
mod tests;
