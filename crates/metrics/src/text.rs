//! OpenMetrics text → classic Prometheus text format 0.0.4.
//!
//! The two differ, for what this crate emits, only in the counter naming
//! convention (OpenMetrics names the family `foo` and its sample `foo_total`;
//! 0.0.4 names both `foo_total`), the `# UNIT` lines and the final `# EOF`.
//! Label and value syntax is the same. Tools that read only 0.0.4 (`promtool
//! check metrics`, older scrapers) would otherwise see every counter sample
//! as an untyped family without help text.

use std::collections::HashSet;

/// Rewrite OpenMetrics text produced by `prometheus-client` to format 0.0.4.
pub(crate) fn openmetrics_to_text(om: &str) -> String {
    let counters: HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 64 * counters.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let mut rewritten = false;
        for kw in ["# HELP ", "# TYPE "] {
            let Some(rest) = line.strip_prefix(kw) else {
                continue;
            };
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) {
                out.push_str(kw);
                out.push_str(name);
                out.push_str("_total ");
                out.push_str(tail);
                out.push('\n');
                rewritten = true;
            }
        }
        if !rewritten {
            // Samples pass unchanged: this crate records no exemplars (the
            // one OpenMetrics-only sample syntax).
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::openmetrics_to_text;

    #[test]
    fn counters_get_total_in_help_and_type() {
        let om = "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\na_bytes_total{j=\"x\"} 5\n\
                  # HELP g Gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        let t = openmetrics_to_text(om);
        assert_eq!(
            t,
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\na_bytes_total{j=\"x\"} 5\n\
             # HELP g Gauge.\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn drops_unit_and_eof_keeps_odd_label_values() {
        let om = "# HELP t_seconds T.\n# TYPE t_seconds counter\n# UNIT t_seconds seconds\n\
                  t_seconds_total{j=\"a # {b\"} 2\n# EOF\n";
        let t = openmetrics_to_text(om);
        assert_eq!(
            t,
            "# HELP t_seconds_total T.\n# TYPE t_seconds_total counter\nt_seconds_total{j=\"a # {b\"} 2\n"
        );
    }

    #[test]
    fn a_gauge_named_like_a_counter_prefix_is_untouched() {
        let om = "# HELP c C.\n# TYPE c counter\nc_total 1\n# HELP cc G.\n# TYPE cc gauge\ncc 2\n# EOF\n";
        let t = openmetrics_to_text(om);
        assert!(t.contains("# TYPE cc gauge\n"), "{t}");
        assert!(t.contains("# TYPE c_total counter\n"), "{t}");
    }
}
