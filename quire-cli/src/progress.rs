//! Progress bars of the sub-commands that move data (`quire copy`, `quire media copy`): drawn
//! on standard error, redrawn in place, hidden when standard error is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

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
