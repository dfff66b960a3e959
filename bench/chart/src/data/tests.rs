//! Unit tests for TSV/meta parsing and aggregation.

use super::*;

fn tsv(rows: &[&str]) -> String {
    let mut s = format!("{TSV_HEADER}\n");
    for r in rows {
        s.push_str(&r.replace(' ', "\t"));
        s.push('\n');
    }
    s
}

#[test]
fn parses_rows_and_aggregates() {
    let r = parse_tsv(&tsv(&[
        "get h1_mibs portcullis 1 741.31",
        "get h1_mibs portcullis 2 902.67",
        "get h1_mibs portcullis 3 905.33",
        "get h1_mibs nginx 1 358.27",
    ]))
    .unwrap();
    assert_eq!(
        r.value("get", "h1_mibs", "portcullis", Agg::Median),
        Some(902.67)
    );
    assert_eq!(
        r.value("get", "h1_mibs", "portcullis", Agg::FirstRound),
        Some(741.31)
    );
    assert_eq!(
        r.value("get", "h1_mibs", "portcullis", Agg::Max),
        Some(905.33)
    );
    assert_eq!(
        r.value("get", "h1_mibs", "nginx", Agg::Median),
        Some(358.27)
    );
    assert_eq!(
        r.value("get", "h1_mibs", "registry-direct", Agg::Median),
        None
    );
    assert_eq!(r.value("get", "h2_mibs", "portcullis", Agg::Median), None);
}

#[test]
fn first_round_is_lowest_round_not_first_line() {
    let r = parse_tsv(&tsv(&[
        "mem conns_mib nginx 2 40.8",
        "mem conns_mib nginx 1 40.7",
    ]))
    .unwrap();
    assert_eq!(
        r.value("mem", "conns_mib", "nginx", Agg::FirstRound),
        Some(40.7)
    );
}

#[test]
fn median_odd_even_empty() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[5.0]), Some(5.0));
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&[10.0, 20.0]), Some(15.0));
}

#[test]
fn contenders_known_first_then_as_seen() {
    let r = parse_tsv(&tsv(&[
        "tls conn_per_s zeta 1 1",
        "tls conn_per_s registry-direct 1 1",
        "tls conn_per_s portcullis-auth-off 1 1",
        "tls conn_per_s nginx 1 1",
        "tls conn_per_s portcullis 1 1",
    ]))
    .unwrap();
    assert_eq!(
        r.contenders(),
        [
            "portcullis",
            "nginx",
            "registry-direct",
            "zeta",
            "portcullis-auth-off"
        ]
    );
}

#[test]
fn header_optional_blank_lines_and_crlf_ok() {
    let r =
        parse_tsv("small\trps\tnginx\t1\t37.84\r\n\n  \nsmall\trps\tnginx\t2\t19.07\n").unwrap();
    assert_eq!(
        r.value("small", "rps", "nginx", Agg::Median),
        Some((37.84 + 19.07) / 2.0)
    );
}

#[test]
fn malformed_lines_are_errors_with_line_numbers() {
    let cases = [
        ("get h1_mibs portcullis 1", 2),       // too few fields
        ("get h1_mibs portcullis 1 2 3", 2),   // too many fields
        ("get h1_mibs portcullis one 2.0", 2), // bad round
        ("get h1_mibs portcullis 1 fast", 2),  // bad value
        ("get h1_mibs portcullis 1 NaN", 2),   // not finite
        ("get h1_mibs portcullis 1 -3", 2),    // negative
        ("get  portcullis 1 2.0", 2),          // empty metric
    ];
    for (row, line) in cases {
        let err = parse_tsv(&tsv(&[row])).unwrap_err();
        assert_eq!(err.line, line, "{row:?}: {err}");
    }
    let dup = parse_tsv(&tsv(&["a b c 1 1", "a b c 1 2"])).unwrap_err();
    assert_eq!(dup.line, 3);
    assert!(dup.msg.contains("duplicate"), "{dup}");
}

#[test]
fn bad_header_and_empty_input_are_errors() {
    assert_eq!(parse_tsv("group\tmetric\tvalue\n").unwrap_err().line, 1);
    assert_eq!(parse_tsv(&tsv(&[])).unwrap_err().line, 0);
    assert_eq!(parse_tsv("").unwrap_err().line, 0);
}

#[test]
fn meta_parsing() {
    let m = parse_meta(
        "# comment\nMODE=full\n\nCPU=AMD EPYC 7B13\nX=a=b = c\nQ=\"quoted value\"\nEMPTY=\n",
    )
    .unwrap();
    assert_eq!(m.get("MODE"), Some("full"));
    assert_eq!(m.get("CPU"), Some("AMD EPYC 7B13"));
    assert_eq!(m.get("X"), Some("a=b = c"));
    assert_eq!(m.get("Q"), Some("quoted value"));
    assert_eq!(m.get("EMPTY"), None);
    assert_eq!(m.get("MISSING"), None);
    assert_eq!(parse_meta("A=1\nno equals sign\n").unwrap_err().line, 2);
    assert_eq!(parse_meta("=value\n").unwrap_err().line, 1);
}

#[test]
fn subtitle_full_and_partial() {
    let m = parse_meta(
        "MODE=full\nROUNDS=3\nNPROC=2\nCPU=AMD EPYC 7B13\nMEM_GIB=24\nDATE=2026-11-25 13:23 UTC\n\
         PORTCULLIS=portcullis 0.1.0 (git 92bc0fd)\nNGINX=nginx/1.22.1\n\
         REGISTRY=docker-registry 2.8.2+ds1\n",
    )
    .unwrap();
    assert_eq!(
        m.subtitle(),
        "2 CPUs, AMD EPYC 7B13, 24 GiB  ·  2026-11-25 13:23 UTC  ·  portcullis 0.1.0 (git 92bc0fd)  ·  \
         nginx/1.22.1  ·  docker-registry 2.8.2+ds1  ·  medians of 3 runs"
    );
    let partial = parse_meta("CPU=x\nROUNDS=1\n").unwrap();
    assert_eq!(partial.subtitle(), "x  ·  single run");
    assert_eq!(Meta::default().subtitle(), "");
}
