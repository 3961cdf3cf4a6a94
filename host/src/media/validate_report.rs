//! What `prewarm validate` tells at the end: counts by verdict and by
//! failed check, folded in as items finish (memory bounded by the examples
//! kept per check), as a summary (text or JSON) and a Markdown report that
//! groups the problems by kind with a plain-language hint each.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::validate::{Check, ItemResult, Verdict};

/// Examples kept per failed check for the Markdown report.
const EXAMPLES_PER_CHECK: usize = 100;

/// One item named in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derivative: Option<String>,
    pub problem: String,
}

/// Items of one failed check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckTally {
    pub count: u64,
    pub hint: &'static str,
    /// The first items (at most 100).
    pub examples: Vec<Example>,
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub schema_version: u32,
    /// `sources` or `derivatives`.
    pub mode: &'static str,
    /// The remote or listing read (sources), or the results file read.
    pub input: String,
    pub items: u64,
    pub ok: u64,
    pub bad: u64,
    pub unreadable: u64,
    /// Derivatives: results lines not checked (not warm, or not sampled).
    pub lines_skipped: u64,
    pub by_check: BTreeMap<Check, CheckTally>,
    pub interrupted: bool,
    pub elapsed_s: f64,
    pub results_out: String,
}

impl Summary {
    pub fn new(mode: &'static str, input: String, results_out: String) -> Self {
        Summary {
            schema_version: 1,
            mode,
            input,
            items: 0,
            ok: 0,
            bad: 0,
            unreadable: 0,
            lines_skipped: 0,
            by_check: BTreeMap::new(),
            interrupted: false,
            elapsed_s: 0.0,
            results_out,
        }
    }

    /// Fold in one finished item.
    pub fn add(&mut self, item: &ItemResult) {
        self.items += 1;
        match item.verdict {
            Verdict::Ok => self.ok += 1,
            Verdict::Bad => self.bad += 1,
            Verdict::Unreadable => self.unreadable += 1,
        }
        for (check, problem) in item.failed.iter().zip(&item.problems) {
            let tally =
                self.by_check.entry(*check).or_insert_with(|| CheckTally { hint: check.hint(), ..Default::default() });
            tally.count += 1;
            if tally.examples.len() < EXAMPLES_PER_CHECK {
                tally.examples.push(Example {
                    path: item.path.clone(),
                    derivative: item.derivative.clone(),
                    problem: problem.clone(),
                });
            }
        }
    }

    /// Whether everything checked passed.
    pub fn all_ok(&self) -> bool {
        self.ok == self.items && !self.interrupted
    }

    /// A few lines for the terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "validated {} {} in {:.1}s: ok {}, bad {}, unreadable {}{}",
            self.items,
            self.mode,
            self.elapsed_s,
            self.ok,
            self.bad,
            self.unreadable,
            if self.interrupted { " (interrupted)" } else { "" }
        );
        if self.lines_skipped > 0 {
            let _ = writeln!(out, "  {} results lines not checked (not warm, or not sampled)", self.lines_skipped);
        }
        for (check, tally) in &self.by_check {
            let _ = writeln!(out, "  {:<11} {:>6}  {}", check.as_str(), tally.count, tally.hint);
            for e in tally.examples.iter().take(3) {
                let _ = writeln!(out, "      {}: {}", name(e), e.problem);
            }
        }
        let _ = writeln!(out, "results: {}", self.results_out);
        out
    }

    /// The Markdown report: counts, then the problems grouped by kind.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# prewarm validate: {}\n", self.mode);
        let _ = writeln!(out, "Input: `{}`. Results: `{}`.\n", self.input, self.results_out);
        let _ = writeln!(out, "| verdict | items |\n|---|---:|");
        for (v, n) in [(Verdict::Ok, self.ok), (Verdict::Bad, self.bad), (Verdict::Unreadable, self.unreadable)] {
            let _ = writeln!(out, "| {} | {n} |", v.as_str());
        }
        let _ = writeln!(out, "| **all** | **{}** |\n", self.items);
        if self.interrupted {
            let _ = writeln!(out, "The run was interrupted: not every item was checked.\n");
        }
        if self.by_check.is_empty() {
            let _ = writeln!(out, "No problems found.");
            return out;
        }
        let _ = writeln!(out, "## Problems by kind\n\n| check | items | what to do |\n|---|---:|---|");
        for (check, tally) in &self.by_check {
            let _ = writeln!(out, "| `{}` | {} | {} |", check.as_str(), tally.count, tally.hint);
        }
        for (check, tally) in &self.by_check {
            let _ = writeln!(out, "\n### `{}` ({})\n\n{}\n", check.as_str(), tally.count, tally.hint);
            for e in &tally.examples {
                let _ = writeln!(out, "- `{}`: {}", name(e).replace('`', "'"), e.problem.replace('\n', " "));
            }
            if tally.count > tally.examples.len() as u64 {
                let _ = writeln!(
                    out,
                    "- … and {} more (all in the results file)",
                    tally.count - tally.examples.len() as u64
                );
            }
        }
        out
    }
}

fn name(e: &Example) -> String {
    match &e.derivative {
        Some(d) => format!("{} [{d}]", e.path),
        None => e.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::validate::{Examined, ItemResult};

    #[test]
    fn groups_problems_by_kind() {
        let mut s = Summary::new("sources", "src".into(), "v.jsonl".into());
        s.add(&ItemResult::new("a.mp4".into(), None, None, Examined::default()));
        let mut bad = ItemResult::new("b.mp4".into(), Some("mobile".into()), None, Examined::default());
        bad.verdict = Verdict::Bad;
        bad.failed = vec![Check::Truncated];
        bad.problems = vec!["truncated: partial file".into()];
        s.add(&bad);
        assert_eq!((s.items, s.ok, s.bad, s.all_ok()), (2, 1, 1, false));
        let md = s.markdown();
        assert!(md.contains("### `truncated` (1)"), "{md}");
        assert!(md.contains("- `b.mp4 [mobile]`: truncated: partial file"), "{md}");
        assert!(md.contains(Check::Truncated.hint()));
        assert!(s.text().contains("ok 1, bad 1, unreadable 0"));
    }
}
