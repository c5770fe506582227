//! What an import did, counted per kind of object, and the table it prints.

use std::fmt;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Not copied; a note says why.
    Skipped,
}

/// Counts of one row of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
    }

    /// Whether the import wrote anything here.
    pub fn changed(&self) -> bool {
        self.created + self.updated > 0
    }
}

/// The whole import's account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Where it was copied from (the source's base URL), for the heading.
    pub source: String,
    pub event_types: Tally,
    pub applications: Tally,
    /// The endpoints' own fields (URL, filters, channels, rate limit, …).
    pub endpoints: Tally,
    /// One per endpoint: its signing secret.
    pub secrets: Tally,
    /// One per header name of an endpoint (a header the source no longer
    /// has, removed from the target, counts as updated).
    pub headers: Tally,
    /// Applications and endpoints that kept their source id.
    pub ids_kept: usize,
    /// Applications and endpoints whose source id is not a valid Hookline
    /// id: they got a new one, remembered for the next run.
    pub ids_mapped: usize,
    /// What was not copied, or copied with a caveat, one line each.
    pub notes: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.event_types.merge(other.event_types);
        self.applications.merge(other.applications);
        self.endpoints.merge(other.endpoints);
        self.secrets.merge(other.secrets);
        self.headers.merge(other.headers);
        self.ids_kept += other.ids_kept;
        self.ids_mapped += other.ids_mapped;
        self.notes.extend(other.notes);
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Whether anything was created or updated.
    pub fn changed_anything(&self) -> bool {
        [self.event_types, self.applications, self.endpoints, self.secrets, self.headers].iter().any(Tally::changed)
    }
}

/// The summary table, then the id count and the notes.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("event types", self.event_types),
            ("applications", self.applications),
            ("endpoints", self.endpoints),
            ("  secrets", self.secrets),
            ("  headers", self.headers),
        ];
        if !self.source.is_empty() {
            writeln!(f, "copied from {}", self.source)?;
        }
        writeln!(f, "{:<14}{:>9}{:>9}{:>11}{:>9}", "", "created", "updated", "unchanged", "skipped")?;
        for (name, t) in rows {
            writeln!(f, "{name:<14}{:>9}{:>9}{:>11}{:>9}", t.created, t.updated, t.unchanged, t.skipped)?;
        }
        writeln!(f)?;
        write!(f, "ids: {} kept from the source", self.ids_kept)?;
        if self.ids_mapped > 0 {
            write!(f, ", {} new (the source's id is not a valid Hookline id; look them up by uid)", self.ids_mapped)?;
        }
        writeln!(f)?;
        if !self.notes.is_empty() {
            writeln!(f, "not copied, or copied with a caveat:")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        write!(f, "messages and delivery attempts are not copied")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_what_was_left_behind() {
        let mut report = Report { source: "https://api.eu.svix.com".into(), ..Report::default() };
        report.event_types.add(Outcome::Created);
        report.applications.add(Outcome::Unchanged);
        report.headers.add(Outcome::Skipped);
        report.ids_kept = 3;
        report.note("header \"Authorization\" of endpoint ep_1: not shown by the source");
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "copied from https://api.eu.svix.com");
        assert_eq!(lines[1], "                created  updated  unchanged  skipped");
        assert_eq!(lines[2], "event types           1        0          0        0");
        assert_eq!(lines[3], "applications          0        0          1        0");
        assert_eq!(lines[6], "  headers             0        0          0        1");
        assert_eq!(lines[8], "ids: 3 kept from the source");
        assert!(text.contains("  - header \"Authorization\""), "{text}");
        assert!(text.ends_with("messages and delivery attempts are not copied"), "{text}");
    }

    #[test]
    fn merged_reports_add_up() {
        let mut a = Report::default();
        a.endpoints.add(Outcome::Created);
        a.ids_mapped = 1;
        let mut b = Report::default();
        b.endpoints.add(Outcome::Updated);
        b.note("x");
        a.merge(b);
        assert_eq!(a.endpoints, Tally { created: 1, updated: 1, unchanged: 0, skipped: 0 });
        assert_eq!((a.ids_mapped, a.notes.len()), (1, 1));
        assert!(a.changed_anything());
        assert!(!Report::default().changed_anything());
    }
}
