//! Progress and events: what a long command tells the person or program watching it.
//!
//! The stages (build, bundle writing, activation, registry transfers) call a [`Reporter`] with
//! typed [`Event`]s and know nothing of terminals. The command line chooses the sink once:
//! bars on a terminal (`indicatif`, on stderr, only when stderr is a terminal), one plain line
//! per event on stderr (`-v`), JSON lines on stdout (`--json`, schema in docs/json.md), or
//! nothing (`-q`, and whenever stderr is not a terminal). Only this module knows `indicatif`.
//! What a command prints as its result is not an event here: the command line prints it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One thing that happened. Serialised as one JSON object with its kind in `event`; the field
/// names are a stable interface (docs/json.md, docs/json-schema.json).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phase of the command begins (`render`, `layers`, `verify`, `switch`, …).
    Phase {
        /// The phase's name.
        phase: &'static str,
    },
    /// A task with a size begins: a download, a layer, a bundle, a blob transfer.
    Start {
        /// The phase it belongs to.
        phase: &'static str,
        /// What it works on (a package, a host, a blob digest).
        name: String,
        /// Bytes (or items) expected, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// How far a task got (throttled: at most a few per second and task).
    Progress {
        /// The phase it belongs to.
        phase: &'static str,
        /// The task's name, as in its `start`.
        name: String,
        /// Bytes (or items) done so far.
        bytes: u64,
        /// Bytes (or items) expected, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A task finished.
    Done {
        /// The phase it belongs to.
        phase: &'static str,
        /// The task's name, as in its `start`.
        name: String,
        /// Bytes (or items) it came to.
        bytes: u64,
        /// The digest of what it made or moved, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// An image was built.
    Image {
        /// The host it is for.
        host: String,
        /// The component (`nginx`, `vmetrics`, …).
        component: String,
        /// The image manifest's digest.
        digest: String,
        /// How many layers it has.
        layers: usize,
        /// Its compressed size.
        bytes: u64,
    },
    /// A host's bundle was written (in the staging directory; it appears under `--out` when the
    /// build's `write` phase ends).
    Bundle {
        /// The host.
        host: String,
        /// Its directory below the output directory.
        path: String,
        /// The generation id (the manifest's digest).
        generation: String,
    },
    /// An activation or rollback step was taken (components left alone are not reported).
    Step {
        /// `start`, `stop`, `restart` or `reload`.
        action: String,
        /// The component.
        component: String,
        /// The systemd unit acted on.
        unit: String,
        /// Why (what changed).
        why: String,
    },
    /// Something worth knowing that is not a failure (one line of text).
    Note {
        /// The text.
        message: String,
    },
    /// A warning: the command goes on.
    Warning {
        /// The text, without `warning: `.
        message: String,
    },
}

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`-q`, or stderr not a terminal).
    Silent,
    /// Notes and warnings on stderr, no progress (stderr not a terminal).
    Quiet,
    /// One plain line per event on stderr, no bars (`-v`).
    Lines,
    /// Bars on stderr (a terminal).
    Bars,
    /// JSON lines on stdout (`--json`).
    Json,
}

/// Where the stages report to. Cheap to share between threads (`&Reporter` is `Sync`).
pub struct Reporter {
    mode: Mode,
    bars: Option<Bars>,
    /// When each task last sent a `progress` event (JSON throttling).
    last: Mutex<BTreeMap<String, Instant>>,
}

/// The terminal sink: one spinner for the phase, one bar per running task.
struct Bars {
    multi: MultiProgress,
    phase: Mutex<Option<ProgressBar>>,
    tasks: Mutex<BTreeMap<String, ProgressBar>>,
}

/// Seconds between two `progress` events of one task on the JSON sink.
const JSON_INTERVAL: Duration = Duration::from_millis(250);

/// Seconds between two plain progress lines of one task (`-v`): a log, not an animation.
const LINE_INTERVAL: Duration = Duration::from_secs(1);

impl Reporter {
    /// A reporter showing events as `mode` says.
    pub fn new(mode: Mode) -> Self {
        let bars = (mode == Mode::Bars).then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            phase: Mutex::new(None),
            tasks: Mutex::new(BTreeMap::new()),
        });
        Self {
            mode,
            bars,
            last: Mutex::new(BTreeMap::new()),
        }
    }

    /// A reporter that shows nothing (library callers, tests, benchmarks).
    pub fn silent() -> Self {
        Self::new(Mode::Silent)
    }

    /// How it shows events.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Reports one event.
    #[allow(clippy::needless_pass_by_value)] // callers build the event for this call
    pub fn event(&self, e: Event) {
        match self.mode {
            Mode::Silent => {}
            Mode::Quiet => match &e {
                Event::Note { message } => eprintln!("{message}"),
                Event::Warning { message } => eprintln!("warning: {message}"),
                _ => {}
            },
            Mode::Lines => {
                if let Some(line) = line(&e) {
                    eprintln!("{line}");
                }
            }
            Mode::Json => self.json(&e),
            Mode::Bars => self.bar(&e),
        }
    }

    /// A phase begins.
    pub fn phase(&self, phase: &'static str) {
        self.event(Event::Phase { phase });
    }

    /// A task begins.
    pub fn start(&self, phase: &'static str, name: &str, total: Option<u64>) {
        self.event(Event::Start {
            phase,
            name: name.to_owned(),
            total,
        });
    }

    /// A task got to `bytes`: a bar moves, a JSON event (at most four a second and task) or a
    /// plain line (`-v`, at most one a second and task).
    pub fn progress(&self, phase: &'static str, name: &str, bytes: u64, total: Option<u64>) {
        match self.mode {
            Mode::Bars | Mode::Json => self.event(Event::Progress {
                phase,
                name: name.to_owned(),
                bytes,
                total,
            }),
            Mode::Lines if self.due(phase, name, LINE_INTERVAL) => {
                eprintln!("{}", progress_line(phase, name, bytes, total));
            }
            Mode::Lines | Mode::Silent | Mode::Quiet => {}
        }
    }

    /// Whether task `name` of `phase` may report its progress again: not within `interval` of
    /// the last time it did (the first time, always).
    fn due(&self, phase: &str, name: &str, interval: Duration) -> bool {
        let key = format!("{phase}\0{name}");
        let now = Instant::now();
        let mut last = self.last.lock().expect("last");
        if last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < interval)
        {
            return false;
        }
        last.insert(key, now);
        true
    }

    /// A task finished.
    pub fn done(&self, phase: &'static str, name: &str, bytes: u64, digest: Option<&str>) {
        self.event(Event::Done {
            phase,
            name: name.to_owned(),
            bytes,
            digest: digest.map(str::to_owned),
        });
    }

    /// A note (one line for people; an event for programs).
    pub fn note(&self, message: impl Into<String>) {
        self.event(Event::Note {
            message: message.into(),
        });
    }

    /// A warning.
    pub fn warning(&self, message: impl Into<String>) {
        self.event(Event::Warning {
            message: message.into(),
        });
    }

    /// Removes every bar, so that what is printed next stands alone.
    pub fn clear(&self) {
        if let Some(b) = &self.bars {
            if let Some(p) = b.phase.lock().expect("phase").take() {
                p.finish_and_clear();
            }
            for (_, t) in std::mem::take(&mut *b.tasks.lock().expect("tasks")) {
                t.finish_and_clear();
            }
            let _ = b.multi.clear();
        }
    }

    /// Writes one JSON line to stdout (the only writer of stdout while a command runs).
    pub fn json_line(value: &impl Serialize) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, value);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    fn json(&self, e: &Event) {
        if let Event::Progress { phase, name, .. } = e {
            if !self.due(phase, name, JSON_INTERVAL) {
                return;
            }
        }
        Self::json_line(e);
    }

    fn bar(&self, e: &Event) {
        let b = self.bars.as_ref().expect("bars in Bars mode");
        match e {
            Event::Phase { phase } => {
                let mut current = b.phase.lock().expect("phase");
                if let Some(p) = current.take() {
                    p.finish_and_clear();
                }
                let p = b.multi.insert(0, ProgressBar::new_spinner());
                p.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("valid template"),
                );
                p.set_message((*phase).to_owned());
                p.enable_steady_tick(Duration::from_millis(120));
                *current = Some(p);
            }
            Event::Start { phase, name, total } => {
                let p = b.multi.add(ProgressBar::new(total.unwrap_or(0)));
                let template = if total.is_some() {
                    "  {prefix} {msg:30!} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec}"
                } else {
                    "  {prefix} {msg:30!} {spinner} {bytes}"
                };
                p.set_style(
                    ProgressStyle::with_template(template)
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                p.set_prefix(*phase);
                p.set_message(name.clone());
                b.tasks
                    .lock()
                    .expect("tasks")
                    .insert(format!("{phase}\0{name}"), p);
            }
            Event::Progress {
                phase, name, bytes, ..
            } => {
                if let Some(p) = b
                    .tasks
                    .lock()
                    .expect("tasks")
                    .get(&format!("{phase}\0{name}"))
                {
                    p.set_position(*bytes);
                }
            }
            Event::Done { phase, name, .. } => {
                if let Some(p) = b
                    .tasks
                    .lock()
                    .expect("tasks")
                    .remove(&format!("{phase}\0{name}"))
                {
                    p.finish_and_clear();
                }
            }
            Event::Note { message } => b.multi.suspend(|| eprintln!("{message}")),
            Event::Warning { message } => b.multi.suspend(|| eprintln!("warning: {message}")),
            Event::Image { .. } | Event::Bundle { .. } | Event::Step { .. } => {}
        }
    }
}

/// A writer that reports the bytes written through it as the progress of one task.
pub struct Counted<'a, W> {
    inner: W,
    progress: &'a Reporter,
    phase: &'static str,
    name: String,
    bytes: u64,
    total: u64,
}

impl<'a, W> Counted<'a, W> {
    /// Counts what goes to `inner` as task `name` of `phase`, `total` bytes expected.
    pub fn new(
        inner: W,
        progress: &'a Reporter,
        phase: &'static str,
        name: &str,
        total: u64,
    ) -> Self {
        Self {
            inner,
            progress,
            phase,
            name: name.to_owned(),
            bytes: 0,
            total,
        }
    }

    /// The writer back, and how many bytes went through.
    pub fn into_inner(self) -> (W, u64) {
        (self.inner, self.bytes)
    }
}

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.progress
            .progress(self.phase, &self.name, self.bytes, Some(self.total));
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The plain line of a task's progress (`-v`, throttled by [`Reporter::progress`]).
fn progress_line(phase: &str, name: &str, bytes: u64, total: Option<u64>) -> String {
    match total {
        Some(t) => format!("{phase}: {name} {bytes}/{t} bytes"),
        None => format!("{phase}: {name} {bytes} bytes"),
    }
}

/// The plain line of an event (`-v`); `None` for progress, which [`Reporter::progress`] prints
/// itself, throttled.
fn line(e: &Event) -> Option<String> {
    Some(match e {
        Event::Phase { phase } => (*phase).to_owned(),
        Event::Start { phase, name, total } => match total {
            Some(t) => format!("{phase}: {name} ({t} bytes)"),
            None => format!("{phase}: {name}"),
        },
        Event::Progress { .. } => return None,
        Event::Done {
            phase,
            name,
            bytes,
            digest,
        } => match digest {
            Some(d) => format!("{phase}: {name} done, {bytes} bytes, {d}"),
            None => format!("{phase}: {name} done, {bytes} bytes"),
        },
        Event::Image {
            host,
            component,
            digest,
            ..
        } => format!("image: {host} infra-{component} {digest}"),
        Event::Bundle {
            host, generation, ..
        } => format!("bundle: {host} generation {generation}"),
        Event::Step {
            action, unit, why, ..
        } => format!("step: {action} {unit} ({why})"),
        Event::Note { message } => message.clone(),
        Event::Warning { message } => format!("warning: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_their_kind_and_stable_fields() {
        let e = Event::Done {
            phase: "download",
            name: "libc6".into(),
            bytes: 3,
            digest: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"done","phase":"download","name":"libc6","bytes":3}"#
        );
        let e = Event::Start {
            phase: "layers",
            name: "x".into(),
            total: Some(9),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"start","phase":"layers","name":"x","total":9}"#
        );
    }

    #[test]
    fn progress_is_throttled_per_task() {
        let r = Reporter::silent();
        assert!(r.due("download", "libc6", LINE_INTERVAL));
        assert!(!r.due("download", "libc6", LINE_INTERVAL), "again at once");
        assert!(r.due("download", "zlib1g", LINE_INTERVAL), "another task");
        assert!(r.due("push", "libc6", LINE_INTERVAL), "another phase");
        assert!(
            r.due("download", "libc6", Duration::ZERO),
            "once the interval passed"
        );
        assert_eq!(
            progress_line("download", "libc6", 5, Some(9)),
            "download: libc6 5/9 bytes"
        );
        assert_eq!(
            progress_line("pull", "oci/blobs/sha256/ab", 5, None),
            "pull: oci/blobs/sha256/ab 5 bytes"
        );
    }

    #[test]
    fn plain_lines_leave_out_progress_only() {
        assert_eq!(
            line(&Event::Phase { phase: "verify" }).as_deref(),
            Some("verify")
        );
        assert!(line(&Event::Progress {
            phase: "pull",
            name: "b".into(),
            bytes: 1,
            total: None
        })
        .is_none());
        assert_eq!(
            line(&Event::Warning {
                message: "w".into()
            })
            .as_deref(),
            Some("warning: w")
        );
    }
}
