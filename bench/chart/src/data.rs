//! Input parsing and aggregation, kept free of any drawing so it can be unit tested.
//!
//! Two inputs come from `bench/run`:
//! * the raw results TSV (`group metric contender round value`, one row per measured run), and
//! * the meta env file (`KEY=value` lines describing the machine and the software versions).
//!
//! Parsing is strict on purpose: a truncated or hand-edited TSV should fail loudly with a line
//! number rather than silently produce a chart with wrong medians.

use std::collections::BTreeMap;
use std::fmt;

/// The exact header line `bench/run` writes; accepted (and skipped) only as the first line.
pub const TSV_HEADER: &str = "group\tmetric\tcontender\tround\tvalue";

/// Contenders with a fixed place (and colour): they are always listed first, in this order.
pub const KNOWN_CONTENDERS: [&str; 5] =
    ["portcullis", "nginx", "caddy", "haproxy", "registry-direct"];

/// A malformed input line (1-based line number) or a whole-file problem (line 0).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line number, or 0 when the problem is not tied to one line.
    pub line: usize,
    /// What is wrong, in words meant for the person running the tool.
    pub msg: String,
}

impl ParseError {
    fn at(line: usize, msg: impl Into<String>) -> Self {
        Self {
            line,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.msg)
        } else {
            write!(f, "line {}: {}", self.line, self.msg)
        }
    }
}

impl std::error::Error for ParseError {}

/// How the per-round values of one series are reduced to the single number a bar shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Median over rounds (mean of the two middle values for an even count).
    Median,
    /// The lowest-numbered round only, for series whose rounds are not independent
    /// (e.g. memory measured in one long-lived process that grows round after round).
    FirstRound,
    /// Maximum over rounds, for peaks.
    Max,
}

/// All raw values, keyed by (group, metric, contender) and then by round.
#[derive(Debug, Default)]
pub struct Results {
    series: BTreeMap<(String, String, String), BTreeMap<u32, f64>>,
    /// Contender names in order of first appearance (used to order unknown contenders).
    seen: Vec<String>,
}

impl Results {
    /// Per-round values of one series, if the TSV had any.
    pub fn rounds(
        &self,
        group: &str,
        metric: &str,
        contender: &str,
    ) -> Option<&BTreeMap<u32, f64>> {
        // BTreeMap<(String, ..)> cannot be queried with borrowed tuples, hence the owned key.
        let key = (group.to_owned(), metric.to_owned(), contender.to_owned());
        self.series.get(&key)
    }

    /// The aggregated value of one series, or `None` when the contender lacks it.
    pub fn value(&self, group: &str, metric: &str, contender: &str, agg: Agg) -> Option<f64> {
        aggregate(self.rounds(group, metric, contender)?, agg)
    }

    /// Every contender: known ones first (fixed order), then the rest as first seen.
    pub fn contenders(&self) -> Vec<String> {
        let mut out: Vec<String> = KNOWN_CONTENDERS
            .iter()
            .filter(|k| self.seen.iter().any(|s| s == *k))
            .map(|k| k.to_string())
            .collect();
        out.extend(
            self.seen
                .iter()
                .filter(|s| !KNOWN_CONTENDERS.contains(&s.as_str()))
                .cloned(),
        );
        out
    }
}

/// Parses the raw results TSV. Blank lines are ignored; anything else must be a valid row.
pub fn parse_tsv(text: &str) -> Result<Results, ParseError> {
    let mut results = Results::default();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if line_no == 1 && line.starts_with("group\t") {
            if line != TSV_HEADER {
                return Err(ParseError::at(
                    1,
                    format!("unexpected header {line:?}, expected {TSV_HEADER:?}"),
                ));
            }
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [group, metric, contender, round, value] = fields[..] else {
            return Err(ParseError::at(
                line_no,
                format!("expected 5 tab-separated fields, found {}", fields.len()),
            ));
        };
        for (name, field) in [
            ("group", group),
            ("metric", metric),
            ("contender", contender),
        ] {
            if field.is_empty() || field.contains(char::is_whitespace) {
                return Err(ParseError::at(line_no, format!("invalid {name} {field:?}")));
            }
        }
        let round: u32 = round.parse().map_err(|_| {
            ParseError::at(line_no, format!("round {round:?} is not a whole number"))
        })?;
        let value: f64 = match value.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                return Err(ParseError::at(
                    line_no,
                    format!("value {value:?} is not a finite non-negative number"),
                ))
            }
        };
        if !results.seen.iter().any(|s| s == contender) {
            results.seen.push(contender.to_owned());
        }
        let key = (group.to_owned(), metric.to_owned(), contender.to_owned());
        if results
            .series
            .entry(key)
            .or_default()
            .insert(round, value)
            .is_some()
        {
            return Err(ParseError::at(
                line_no,
                format!("duplicate row for {group}/{metric} {contender} round {round}"),
            ));
        }
    }
    if results.series.is_empty() {
        return Err(ParseError::at(0, "no data rows"));
    }
    Ok(results)
}

/// Median of `values` (mean of the two middle values for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Reduces per-round values (keyed by round number) as `agg` says.
pub fn aggregate(rounds: &BTreeMap<u32, f64>, agg: Agg) -> Option<f64> {
    match agg {
        Agg::Median => median(&rounds.values().copied().collect::<Vec<_>>()),
        Agg::FirstRound => rounds.values().next().copied(),
        Agg::Max => rounds.values().copied().reduce(f64::max),
    }
}

/// The meta env file: `KEY=value` lines; values may contain spaces and further `=`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meta(BTreeMap<String, String>);

impl Meta {
    /// The value of `key`, if present and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The figure's subtitle: machine, date, versions, number of runs. Missing keys are left out.
    pub fn subtitle(&self) -> String {
        let machine: Vec<String> = [
            self.get("NPROC").map(|n| format!("{n} CPUs")),
            self.get("CPU").map(str::to_owned),
            self.get("MEM_GIB").map(|m| format!("{m} GiB")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut parts = Vec::new();
        if !machine.is_empty() {
            parts.push(machine.join(", "));
        }
        for key in ["DATE", "PORTCULLIS", "NGINX", "REGISTRY"] {
            parts.extend(self.get(key).map(str::to_owned));
        }
        parts.extend(self.get("ROUNDS").map(|r| match r {
            "1" => "single run".to_owned(),
            _ => format!("medians of {r} runs"),
        }));
        parts.join("  ·  ")
    }
}

/// Parses the meta env file. Blank lines and `#` comments are skipped; a line without `=`
/// is an error. Matching surrounding single or double quotes around a value are removed.
pub fn parse_meta(text: &str) -> Result<Meta, ParseError> {
    let mut map = BTreeMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::at(idx + 1, "expected KEY=value"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ParseError::at(idx + 1, "empty key before '='"));
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(value);
        map.insert(key.to_owned(), unquoted.to_owned());
    }
    Ok(Meta(map))
}

#[cfg(test)]
mod tests;
