//! A measured figure of one run, and what it is compared with.

use std::time::Duration;

use crate::stats;

/// Names a figure across runs: its scenario and its name there.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Key {
    pub scenario: String,
    pub figure: String,
}

impl Key {
    pub fn new(scenario: &str, figure: impl Into<String>) -> Key {
        Key { scenario: scenario.to_string(), figure: figure.into() }
    }
}

/// One value of one run.
pub struct Measured {
    pub key: Key,
    pub unit: &'static str,
    pub value: f64,
    /// The ceilings (or other figures) it is reported as a ratio of.
    pub compared_with: Vec<Key>,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {} {}", self.key.scenario, self.key.figure, crate::report::number(self.value), self.unit)
    }
}

impl Measured {
    pub fn new(scenario: &str, figure: impl Into<String>, unit: &'static str, value: f64) -> Measured {
        Measured { key: Key::new(scenario, figure), unit, value, compared_with: Vec::new() }
    }

    /// A latency, in milliseconds.
    pub fn millis(scenario: &str, figure: impl Into<String>, latency: Duration) -> Measured {
        Measured::new(scenario, figure, "ms", stats::millis(latency))
    }

    /// A size in bytes, shown in MiB.
    pub fn mebibytes(scenario: &str, figure: impl Into<String>, bytes: u64) -> Measured {
        Measured::new(scenario, figure, "MiB", bytes as f64 / (1024.0 * 1024.0))
    }

    pub fn against(mut self, ceiling: Key) -> Measured {
        self.compared_with.push(ceiling);
        self
    }
}
