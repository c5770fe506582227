//! The results of every run: the median of each figure, its ratio to what
//! it is compared with, printed as a table and written as JSON.

use serde_json::{json, Value};

use crate::figure::{Key, Measured};
use crate::stats::median;

/// One figure over the runs.
struct Figure {
    key: Key,
    unit: &'static str,
    runs: Vec<f64>,
    compared_with: Vec<Key>,
}

impl Figure {
    fn median(&self) -> f64 {
        median(&self.runs)
    }
}

/// Figures in the order they were first measured.
#[derive(Default)]
pub struct Results {
    figures: Vec<Figure>,
}

impl Results {
    pub fn add(&mut self, measured: Measured) {
        match self.figures.iter_mut().find(|f| f.key == measured.key) {
            Some(figure) => figure.runs.push(measured.value),
            None => self.figures.push(Figure {
                key: measured.key,
                unit: measured.unit,
                runs: vec![measured.value],
                compared_with: measured.compared_with,
            }),
        }
    }

    fn find(&self, key: &Key) -> Option<&Figure> {
        self.figures.iter().find(|f| &f.key == key)
    }

    /// Each figure this one is compared with that was measured, with the ratio of the medians.
    fn comparisons<'a>(&'a self, figure: &'a Figure) -> impl Iterator<Item = (&'a Figure, f64)> + 'a {
        figure
            .compared_with
            .iter()
            .filter_map(|key| self.find(key))
            .map(|other| (other, figure.median() / other.median()))
    }

    /// The table: scenario, figure, median, what it is compared with, ratio.
    pub fn table(&self) -> String {
        let mut rows = vec![["scenario", "figure", "value", "ceiling", "ratio"].map(String::from)];
        for figure in &self.figures {
            let mut first = [
                figure.key.scenario.clone(),
                figure.key.figure.clone(),
                format!("{} {}", number(figure.median()), figure.unit),
                String::new(),
                String::new(),
            ];
            let mut comparisons = self.comparisons(figure).peekable();
            if comparisons.peek().is_none() {
                rows.push(first);
                continue;
            }
            for (other, ratio) in comparisons {
                let mut row = std::mem::take(&mut first);
                row[3] =
                    format!("{} {}: {} {}", other.key.scenario, other.key.figure, number(other.median()), other.unit);
                row[4] = format!("{ratio:.2}");
                rows.push(row);
            }
        }
        let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    let pad = w - cell.chars().count();
                    // Numbers align right, words left.
                    if c == 2 || c == 4 {
                        format!("{}{cell}", " ".repeat(pad))
                    } else {
                        format!("{cell}{}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                out.push_str(&widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>().join("  "));
                out.push('\n');
            }
        }
        out
    }

    /// Every figure with its runs, median and ratios.
    pub fn to_json(&self) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|figure| {
                let compared: Vec<Value> = self
                    .comparisons(figure)
                    .map(|(other, ratio)| {
                        json!({
                            "scenario": other.key.scenario,
                            "figure": other.key.figure,
                            "median": finite(other.median()),
                            "ratio": finite(ratio),
                        })
                    })
                    .collect();
                json!({
                    "scenario": figure.key.scenario,
                    "figure": figure.key.figure,
                    "unit": figure.unit,
                    "runs": figure.runs.iter().map(|&v| finite(v)).collect::<Vec<_>>(),
                    "median": finite(figure.median()),
                    "compared_with": compared,
                })
            })
            .collect();
        Value::Array(figures)
    }
}

/// JSON has no NaN or infinity: null instead.
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// A value with precision that suits its size; thousands grouped by spaces.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        let digits = format!("{:.0}", v.abs());
        let grouped: Vec<String> =
            digits.as_bytes().rchunks(3).rev().map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect();
        format!("{}{}", if v < 0.0 { "-" } else { "" }, grouped.join(" "))
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_group_thousands_and_keep_small_ones_precise() {
        assert_eq!(number(5413.4), "5 413");
        assert_eq!(number(1_234_567.0), "1 234 567");
        assert_eq!(number(123.0), "123");
        assert_eq!(number(26.04), "26.0");
        assert_eq!(number(0.456), "0.46");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "-");
    }

    #[test]
    fn a_figure_is_the_median_of_its_runs_and_compared_by_ratio() {
        let mut results = Results::default();
        for (value, ceiling) in [(100.0, 400.0), (300.0, 500.0), (200.0, 1000.0)] {
            results.add(Measured::new("c", "rate", "req/s", ceiling));
            results.add(Measured::new("s", "rate", "msg/s", value).against(Key::new("c", "rate")));
        }
        let json = results.to_json();
        assert_eq!(json[1]["runs"], json!([100.0, 300.0, 200.0]));
        assert_eq!(json[1]["median"], json!(200.0));
        assert_eq!(json[1]["compared_with"][0]["ratio"], json!(0.4));
        let table = results.table();
        assert!(table.contains("c rate: 500 req/s"), "{table}");
        assert!(table.contains("0.40"), "{table}");
    }
}
