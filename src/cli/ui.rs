//! How a command talks: its result lines on stdout, warnings and errors on stderr, progress
//! through the [`Reporter`] (bars, plain lines or nothing), or, with `--json`, JSON lines on
//! stdout ending with one `result` object (docs/json.md).

use std::cell::RefCell;
use std::io::IsTerminal as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::progress::{Mode, Reporter};

/// The global output switches.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Switches {
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
}

/// The output of one command.
pub(super) struct Ui {
    /// Where the stages report progress and events.
    pub progress: Reporter,
    switches: Switches,
    command: &'static str,
    errors: RefCell<Vec<String>>,
    result: RefCell<Map<String, Value>>,
}

impl Ui {
    /// The output of `command` under `switches`: bars only when stderr is a terminal.
    pub fn new(command: &'static str, switches: Switches) -> Self {
        let mode = if switches.json {
            Mode::Json
        } else if switches.quiet {
            Mode::Silent
        } else if switches.verbose {
            Mode::Lines
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Quiet
        };
        Self {
            progress: Reporter::new(mode),
            switches,
            command,
            errors: RefCell::new(Vec::new()),
            result: RefCell::new(Map::new()),
        }
    }

    /// A line of the command's human result on stdout (not with `-q` or `--json`).
    pub fn say(&self, line: impl std::fmt::Display) {
        if !self.switches.quiet && !self.switches.json {
            self.progress.clear();
            println!("{line}");
        }
    }

    /// A warning (stderr, or a `warning` event; nothing with `-q`).
    pub fn warn(&self, message: impl Into<String>) {
        self.progress.warning(message);
    }

    /// An error: `error: …` on stderr, always; under `--json` also the result's `error`.
    pub fn error(&self, message: impl std::fmt::Display) {
        let message = message.to_string();
        self.progress.clear();
        eprintln!("error: {message}");
        self.errors.borrow_mut().push(message);
    }

    /// Sets field `key` of the result object.
    pub fn set(&self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).expect("result fields serialise");
        self.result.borrow_mut().insert(key.to_owned(), value);
    }

    /// Sets every field of `value` (an object) as a field of the result object.
    pub fn set_all(&self, value: impl Serialize) {
        if let Value::Object(m) = serde_json::to_value(value).expect("result fields serialise") {
            self.result.borrow_mut().extend(m);
        }
    }

    /// Ends the command with exit code `code`: under `--json`, the result object.
    pub fn finish(&self, code: i32) -> i32 {
        self.progress.clear();
        if self.switches.json {
            Reporter::json_line(&self.result_object(code));
        }
        code
    }

    fn result_object(&self, code: i32) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert("event".into(), "result".into());
        o.insert("command".into(), self.command.into());
        o.insert("ok".into(), (code == 0).into());
        o.insert("exit".into(), code.into());
        let errors = self.errors.borrow();
        if code != 0 || !errors.is_empty() {
            let text = if errors.is_empty() {
                "failed".to_owned()
            } else {
                errors.join("\n")
            };
            o.insert("error".into(), text.into());
        }
        for (k, v) in self.result.borrow().iter() {
            o.insert(k.clone(), v.clone());
        }
        o
    }
}

/// A usage error under `--json` (before any command ran): the result object alone.
pub(super) fn usage_error(command: Option<&str>, text: &str) {
    let mut o = Map::new();
    o.insert("event".into(), "result".into());
    o.insert("command".into(), command.map_or(Value::Null, Value::from));
    o.insert("ok".into(), false.into());
    o.insert("exit".into(), 2.into());
    let text = text.trim_end();
    o.insert(
        "error".into(),
        text.strip_prefix("error: ").unwrap_or(text).into(),
    );
    Reporter::json_line(&o);
}
