//! The report as one self-contained HTML page: inline CSS and SVG bar charts,
//! no scripts and no external assets (the box may have no internet, and the
//! page must not leak who looks at it). Every text from the data is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::DailyReport;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

/// A horizontal bar chart of `(label, value)`, longest bar = largest value.
pub fn bar_chart(title: &str, bars: &[(String, f64)], format: impl Fn(f64) -> String) -> String {
    const ROW: usize = 22;
    const LABEL: usize = 220;
    const WIDTH: usize = 360;
    let mut svg = String::new();
    let height = ROW * bars.len().max(1) + 8;
    let _ = write!(
        svg,
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        escape(title),
        LABEL + WIDTH + 80,
        LABEL + WIDTH + 80
    );
    if bars.is_empty() {
        let _ = write!(svg, "<text x=\"0\" y=\"16\">no data</text>");
    }
    let max = bars.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = i * ROW + 4;
        let width = if max > 0.0 { (value / max * WIDTH as f64).round() as usize } else { 0 };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{}\" y=\"{y}\" width=\"{width}\" height=\"{}\" fill=\"#3a7bd5\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 6,
            y + 14,
            escape(label),
            LABEL,
            ROW - 6,
            LABEL + width + 6,
            y + 14,
            escape(&format(*value)),
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

fn counts(map: &BTreeMap<String, u64>) -> Vec<(String, f64)> {
    let mut bars: Vec<(String, f64)> = map.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    bars
}

/// The whole page.
pub fn page(report: &DailyReport, box_name: &str) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>voicebotd service report — {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}\
         table{{border-collapse:collapse}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         svg text{{font-size:12px;font-family:sans-serif}}figure{{margin:1em 0}}\
         figcaption{{font-weight:bold;margin-bottom:.3em}}</style></head><body>\n\
         <h1>Service report — {name}</h1>\n<p>Calls that ended between {from} and {to} (UTC).</p>\n",
        name = escape(box_name),
        from = escape(&utc(report.from_ms)),
        to = escape(&utc(report.to_ms)),
    );
    let _ = writeln!(
        html,
        "<table><tr><th>Calls</th><td>{}</td></tr><tr><th>Containment (resolved without hand-over)</th><td>{}</td></tr>\
         <tr><th>Abandonment</th><td>{}</td></tr><tr><th>Average emotion (valence, −2 … +2)</th><td>{}</td></tr></table>",
        report.calls,
        percent(report.containment_rate),
        percent(report.abandonment_rate),
        report.average_valence.map_or_else(|| "–".to_owned(), |v| format!("{v:+.2}")),
    );
    html.push_str(&bar_chart("Outcomes", &counts(&report.outcomes), |v| format!("{v}")));
    html.push_str(&bar_chart("Caller turns by intent", &counts(&report.intents), |v| format!("{v}")));
    let transfers: Vec<(String, f64)> = {
        let mut bars: Vec<(String, f64)> =
            report.transfer_rate_by_reason.iter().map(|(k, v)| (k.clone(), *v)).collect();
        bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        bars
    };
    html.push_str(&bar_chart("Transfer rate by reason", &transfers, |v| format!("{:.1} %", v * 100.0)));
    html.push_str(&bar_chart("Turns by emotion", &counts(&report.emotions), |v| format!("{v}")));
    html.push_str("<h2>Top unanswered questions</h2>\n");
    if report.top_unanswered.is_empty() {
        html.push_str("<p>None.</p>\n");
    } else {
        html.push_str("<table><tr><th>Asked</th><th>Question (masked)</th></tr>\n");
        for q in &report.top_unanswered {
            let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", q.count, escape(&q.text));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// `YYYY-MM-DD HH:MM` UTC of Unix milliseconds (civil-from-days, no time crate).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Question, StoredCall, StoredTurn};

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(utc(1_767_225_600_000 + 90 * 60_000), "2026-01-01 01:30");
    }

    #[test]
    fn the_page_escapes_caller_text_and_draws_one_bar_per_value() {
        let calls = vec![StoredCall {
            ended_ms: 5,
            outcome: "resolved".into(),
            reason: None,
            turns: vec![StoredTurn {
                intent: "out_of_scope".into(),
                valence: Some(1),
                emotion: Some("neutral".into()),
                question: Some("<script>alert(1)</script>".into()),
            }],
        }];
        let report = DailyReport::compute(0, 10, &calls);
        assert_eq!(
            report.top_unanswered,
            vec![Question { text: "<script>alert(1)</script>".into(), count: 1 }]
        );
        let html = page(&report, "box<1>");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("box&lt;1&gt;"));
        assert!(html.contains("100.0 %"), "containment of one resolved call");
        assert_eq!(html.matches("<svg").count(), 4);
        assert_eq!(html.matches("<rect").count(), 3, "one outcome, one intent, one emotion; no transfers");
        assert!(
            !html.contains("src=") && !html.contains("href=") && !html.contains("url("),
            "no external assets"
        );
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let svg = bar_chart("t", &[("a".into(), 4.0), ("b".into(), 2.0)], |v| format!("{v}"));
        assert!(svg.contains("width=\"360\" height=\"16\""), "{svg}");
        assert!(svg.contains("width=\"180\" height=\"16\""), "{svg}");
    }
}
