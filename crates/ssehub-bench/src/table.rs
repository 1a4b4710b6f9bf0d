//! The text form of a bench report: aligned `name value` rows, shared by the scenarios so
//! that their tables read alike.

use std::fmt::Write as _;

use crate::histogram::PercentilesMs;

/// A report being written.
#[derive(Default)]
pub(crate) struct Table(String);

impl Table {
    pub(crate) fn row(&mut self, name: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "  {name:<22} {value}");
    }

    /// p50, p90, p99 and max in one row; `-` when nothing was measured.
    pub(crate) fn percentiles(&mut self, name: &str, p: Option<&PercentilesMs>) {
        match p {
            Some(p) => self.row(
                name,
                format_args!(
                    "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                    p.p50, p.p90, p.p99, p.max
                ),
            ),
            None => self.row(name, "-"),
        }
    }

    /// A row for each count that is not zero (things that should not happen).
    pub(crate) fn nonzero(&mut self, counts: &[(&str, u64)]) {
        for &(name, value) in counts {
            if value > 0 {
                self.row(name, format_args!("{value:>10}"));
            }
        }
    }

    /// The run's first errors, and whether its deadline cut it short.
    pub(crate) fn trouble(
        &mut self,
        publish_error: Option<&str>,
        stream_error: Option<&str>,
        deadline_reached: bool,
    ) {
        if let Some(error) = publish_error {
            self.row("first publish error", error);
        }
        if let Some(error) = stream_error {
            self.row("first stream error", error);
        }
        if deadline_reached {
            self.row(
                "deadline",
                "reached (--max-duration): the run was cut short",
            );
        }
    }

    /// The text so far, to append free-form lines.
    pub(crate) fn text(&mut self) -> &mut String {
        &mut self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}
