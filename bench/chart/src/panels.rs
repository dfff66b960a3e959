//! Which panels the chart has (a data-driven table) and the numbers each one shows.
//!
//! To chart a new metric, add a row to [`PANELS`]; a row whose metric is absent from the
//! TSV produces no panel, so rows for metrics that `bench/run` does not emit yet are harmless.

use crate::data::{Agg, Meta, Results};

/// The peer gateways; Portcullis' ratios are to the best of them in each panel.
pub const PEERS: [&str; 3] = ["nginx", "caddy", "haproxy"];

/// Whether a contender's bar carries a ratio: Portcullis and its variants (the peers are the
/// reference, and the proxy-less baseline is not a gateway).
fn has_ratio(contender: &str) -> bool {
    contender.starts_with("portcullis")
}

/// Which direction is good for a metric; shown in the panel's unit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One row of the panel table.
#[derive(Debug, Clone, Copy)]
pub struct PanelSpec {
    /// Panel heading. `{IDLE_CONNS}` is replaced by that meta value (default 1000).
    pub title: &'static str,
    /// Unit of the values, shown under the heading.
    pub unit: &'static str,
    pub better: Better,
    pub group: &'static str,
    pub metric: &'static str,
    pub agg: Agg,
}

const fn spec(
    title: &'static str,
    unit: &'static str,
    better: Better,
    group: &'static str,
    metric: &'static str,
    agg: Agg,
) -> PanelSpec {
    PanelSpec {
        title,
        unit,
        better,
        group,
        metric,
        agg,
    }
}

use Agg::{FirstRound, Max, Median};
use Better::{Higher, Lower};

/// All panels, in reading order (left to right, top to bottom).
#[rustfmt::skip] // one row per panel reads best as a table
pub const PANELS: &[PanelSpec] = &[
    spec("Blob GET, HTTP/1.1", "MiB/s", Higher, "get", "h1_mibs", Median),
    spec("Blob GET, HTTP/2", "MiB/s", Higher, "get", "h2_mibs", Median),
    spec("Gateway CPU per GiB, GET HTTP/1.1", "CPU s/GiB", Lower, "get", "h1_cpu_s_per_gib", Median),
    spec("Gateway CPU per GiB, GET HTTP/2", "CPU s/GiB", Lower, "get", "h2_cpu_s_per_gib", Median),
    spec("32 parallel pulls, aggregate", "MiB/s", Higher, "par", "par_mibs", Median),
    spec("Gateway CPU per GiB, parallel pulls", "CPU s/GiB", Lower, "par", "par_cpu_s_per_gib", Median),
    spec("Small-layer pull", "layers/s", Higher, "small_blobs", "layers_per_s", Median),
    spec("Upload, monolithic PUT", "MiB/s", Higher, "upload", "put_mibs", Median),
    spec("Upload, PUT over HTTP/2", "MiB/s", Higher, "upload", "put_h2_mibs", Median),
    spec("Upload, chunked PATCH", "MiB/s", Higher, "upload", "patch_mibs", Median),
    spec("Gateway CPU per GiB, upload PUT", "CPU s/GiB", Lower, "upload", "put_cpu_s_per_gib", Median),
    spec("Gateway CPU per GiB, upload PATCH", "CPU s/GiB", Lower, "upload", "patch_cpu_s_per_gib", Median),
    spec("Authenticated GET /v2/", "req/s", Higher, "small", "rps", Median),
    spec("Authenticated HEAD manifest", "req/s", Higher, "small", "head_rps", Median),
    spec("HEAD manifest, registry on its own CPU", "req/s", Higher, "small", "head_pinned_rps", Median),
    spec("p99 latency, GET /v2/", "ms", Lower, "small", "p99_ms", Median),
    spec("p99 latency, HEAD manifest", "ms", Lower, "small", "head_p99_ms", Median),
    spec("TLS full handshakes", "handshakes/s", Higher, "tls", "conn_per_s", Median),
    spec("TLS resumed handshakes", "handshakes/s", Higher, "tls", "resumed_per_s", Median),
    spec("Gateway CPU per full handshake", "ms", Lower, "tls", "new_cpu_ms_per_conn", Median),
    // Rounds share one gateway process whose RSS only grows, so they are not independent
    // samples: the first round is the honest number.
    spec("RSS with {IDLE_CONNS} idle TLS connections", "MiB", Lower, "mem", "conns_mib", FirstRound),
    spec("Peak RSS during blob GET, HTTP/1.1", "MiB", Lower, "get", "h1_peak_rss_mib", Max),
    spec("RSS growth during 32 parallel pulls", "MiB", Lower, "par", "par_rss_growth_mib", Max),
];

/// One bar: a contender's aggregated value and, for Portcullis, its ratio to the best peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub contender: String,
    pub value: f64,
    pub ratio: Option<f64>,
}

/// A panel ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    /// Unit, direction and (when not the median) how rounds were reduced.
    pub note: String,
    pub bars: Vec<Bar>,
}

/// Builds the panels that have data, bars ordered as `contenders`.
pub fn build(results: &Results, contenders: &[String], meta: &Meta) -> Vec<Panel> {
    PANELS
        .iter()
        .filter_map(|spec| build_one(spec, results, contenders, meta))
        .collect()
}

fn build_one(
    spec: &PanelSpec,
    results: &Results,
    contenders: &[String],
    meta: &Meta,
) -> Option<Panel> {
    let value = |c: &str| results.value(spec.group, spec.metric, c, spec.agg);
    let reference = PEERS
        .iter()
        .filter_map(|p| value(p))
        .filter(|v| *v > 0.0)
        .reduce(|a, b| match spec.better {
            Higher => a.max(b),
            Lower => a.min(b),
        });
    let bars: Vec<Bar> = contenders
        .iter()
        .filter_map(|c| {
            let v = value(c)?;
            let ratio = match reference {
                Some(r) if has_ratio(c) => Some(v / r),
                _ => None,
            };
            Some(Bar {
                contender: c.clone(),
                value: v,
                ratio,
            })
        })
        .collect();
    if bars.is_empty() {
        return None;
    }
    let direction = match spec.better {
        Higher => "higher is better",
        Lower => "lower is better",
    };
    let how = match spec.agg {
        Median => "",
        FirstRound => "  ·  first run only",
        Max => "  ·  max over runs",
    };
    Some(Panel {
        title: spec
            .title
            .replace("{IDLE_CONNS}", meta.get("IDLE_CONNS").unwrap_or("1000")),
        note: format!("{}, {direction}{how}", spec.unit),
        bars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{parse_meta, parse_tsv};

    #[test]
    fn panels_skip_absent_metrics_and_compute_ratios() {
        let r = parse_tsv(
            "tls\tconn_per_s\tportcullis\t1\t900\n\
             tls\tconn_per_s\tnginx\t1\t450\n\
             tls\tconn_per_s\tregistry-direct\t1\t100\n\
             mem\tconns_mib\tportcullis\t1\t60\n\
             mem\tconns_mib\tportcullis\t2\t120\n",
        )
        .unwrap();
        let meta = parse_meta("IDLE_CONNS=500\n").unwrap();
        let panels = build(&r, &r.contenders(), &meta);
        assert_eq!(panels.len(), 2);
        let tls = &panels[0];
        assert_eq!(tls.bars.len(), 3);
        assert_eq!(tls.bars[0].ratio, Some(2.0));
        assert_eq!(tls.bars[1].ratio, None);
        assert_eq!(tls.bars[2].ratio, None);
        let mem = &panels[1];
        assert_eq!(mem.title, "RSS with 500 idle TLS connections");
        assert_eq!(
            mem.bars,
            [Bar {
                contender: "portcullis".into(),
                value: 60.0,
                ratio: None
            }]
        );
    }

    #[test]
    fn every_spec_is_unique() {
        for (i, a) in PANELS.iter().enumerate() {
            for b in &PANELS[i + 1..] {
                assert!((a.group, a.metric) != (b.group, b.metric), "{}", a.metric);
            }
        }
    }
}
