//! Reporting (rows beside their baselines, goals) and the interleaved micro-benchmark driver.

use super::*;

// ---------------------------------------------------------------------------------------------
// Reporting

/// A goal on a ratio: its human form and the test.
pub(crate) type Goal = (String, fn(f64) -> bool);

/// One line of a figure's table.
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) baseline: String,
    pub(crate) measured: String,
    pub(crate) ratio: f64,
    /// `None`: informational.
    pub(crate) goal: Option<Goal>,
}

impl Row {
    pub(crate) fn new(label: &str, baseline: String, measured: String, ratio: f64) -> Self {
        Row {
            label: label.to_owned(),
            baseline,
            measured,
            ratio,
            goal: None,
        }
    }

    pub(crate) fn goal(mut self, text: &str, met: fn(f64) -> bool) -> Self {
        self.goal = Some((text.to_owned(), met));
        self
    }
}

pub(crate) struct Report {
    pub(crate) judged: bool,
    /// (figure, row label, met) for the summary.
    pub(crate) verdicts: Vec<(String, String, bool, String)>,
}

impl Report {
    pub(crate) fn figure(&mut self, id: &str, title: &str, columns: (&str, &str), rows: &[Row]) {
        println!();
        println!("[{id}] {title}");
        println!(
            "  {:<44} {:>16} {:>16} {:>8}  {:<10} result",
            "", columns.0, columns.1, "ratio", "goal"
        );
        for row in rows {
            let (goal, result) = match &row.goal {
                None => ("-".to_owned(), "info".to_owned()),
                Some((text, met)) if self.judged => {
                    let ok = met(row.ratio);
                    self.verdicts.push((
                        id.to_owned(),
                        row.label.clone(),
                        ok,
                        format!("{:.2}x vs goal {text}", row.ratio),
                    ));
                    (text.clone(), if ok { "met" } else { "MISSED" }.to_owned())
                }
                Some((text, _)) => (text.clone(), "(smoke)".to_owned()),
            };
            println!(
                "  {:<44} {:>16} {:>16} {:>7.2}x  {:<10} {result}",
                row.label, row.baseline, row.measured, row.ratio, goal
            );
        }
    }

    pub(crate) fn note(&self, text: &str) {
        println!("  note: {text}");
    }
}

pub(crate) fn ns(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.2} us", v / 1000.0)
    } else {
        format!("{v:.1} ns")
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// Micro benchmark driver

/// Runs `rounds + 1` rounds; in each, every case runs one batch of `batch` calls, given the
/// global call indices `round * batch .. (round + 1) * batch` (so a case can use a fresh input
/// per call). Round 0 warms up and is not timed. Returns each case's median ns per call.
pub(crate) fn interleaved(
    rounds: usize,
    batch: usize,
    cases: &mut [&mut dyn FnMut(Range<usize>)],
) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..=rounds {
        let range = round * batch..(round + 1) * batch;
        // Alternate which case goes first, so a slow drift favours none of them.
        let order: Vec<usize> = if round.is_multiple_of(2) {
            (0..cases.len()).collect()
        } else {
            (0..cases.len()).rev().collect()
        };
        for i in order {
            let started = Instant::now();
            (cases[i])(range.clone());
            let elapsed = started.elapsed();
            if round > 0 {
                samples[i].push(elapsed.as_secs_f64() * 1e9 / batch as f64);
            }
        }
    }
    samples.iter_mut().map(|s| median(s)).collect()
}
