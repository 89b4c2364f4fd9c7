//! Progress of the sub-commands that move data (`quire copy`, `quire media copy`, `quire
//! backup`, `restore`, `export`, `import`): a bar on standard error, redrawn in place, when
//! standard error is a terminal; otherwise (a log file, a pipe, CI) a plain line every few
//! seconds and one at the end.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// An empty bar drawn with `template` (indicatif's template language).
pub(crate) fn bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// What a [`Meter`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Rows,
    Pages,
}

/// Progress of one step: a bar on a terminal, plain lines otherwise.
pub(crate) struct Meter {
    bar: ProgressBar,
    unit: Unit,
    /// When standard error is not a terminal: the step's name and the last line's time.
    lines: Option<Mutex<(String, Instant)>>,
}

impl Meter {
    /// A meter for the step `label`, which will count to `total`.
    pub(crate) fn new(label: &str, total: u64, unit: Unit) -> Self {
        let template = match unit {
            Unit::Bytes => {
                "{prefix:>10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)"
            }
            _ => "{prefix:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        };
        let bar = bar(template);
        bar.set_prefix(label.to_owned());
        bar.set_length(total);
        let lines = (!std::io::stderr().is_terminal())
            .then(|| Mutex::new((label.to_owned(), Instant::now())));
        Self { bar, unit, lines }
    }

    /// `n` more done.
    pub(crate) fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(lines) = &self.lines
            && let Ok(mut lines) = lines.lock()
            && lines.1.elapsed() >= LINE_EVERY
        {
            lines.1 = Instant::now();
            eprintln!("{}", self.line(&lines.0));
        }
    }

    /// Sets how much is done (a step that reports totals rather than increments).
    pub(crate) fn set(&self, done: u64) {
        let before = self.bar.position();
        if done > before {
            self.inc(done - before);
        }
    }

    /// The total counted to.
    pub(crate) fn total(&self) -> u64 {
        self.bar.length().unwrap_or(0)
    }

    /// Sets a new total (a step whose size is learnt as it goes).
    pub(crate) fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// The step is over: the bar goes, a plain last line is written.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(lines) = &self.lines
            && let Ok(lines) = lines.lock()
        {
            eprintln!("{}", self.line(&lines.0));
        }
    }

    fn line(&self, label: &str) -> String {
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        let unit = match self.unit {
            Unit::Bytes => {
                return format!(
                    "{label}: {} of {} ({percent:.0}%)",
                    HumanBytes(done),
                    HumanBytes(total)
                );
            }
            Unit::Rows => "rows",
            Unit::Pages => "pages",
        };
        format!("{label}: {done} of {total} {unit} ({percent:.0}%)")
    }
}
