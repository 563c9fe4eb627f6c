//! `snapshotting.timestamp_format` and `timestamp_location`: zrepl's naming
//! rules, implemented by the snapshotter ([`zrelay_snapshot::timestamp`]) and
//! re-exported here for validation. An unknown time zone is rejected here,
//! at configuration time.

pub use zrelay_snapshot::timestamp::*;

#[cfg(test)]
mod tests {
    fn parse(location: &str) -> Result<crate::Config, crate::ConfigError> {
        let text = format!(
            "jobs:\n- name: s\n  type: snap\n  filesystems: {{\"p<\": true}}\n  snapshotting:\n    type: cron\n    prefix: zrepl_\n    cron: \"0 * * * *\"\n    timestamp_format: iso-8601\n    timestamp_location: {location}\n  pruning:\n    keep: []\n"
        );
        crate::parse_str(&text, std::path::Path::new("t.yml"))
    }

    #[test]
    fn unknown_zones_fail_validation() {
        assert!(parse("Europe/Berlin").is_ok());
        let e = parse("Europe/Berln").unwrap_err().to_string();
        assert!(e.contains("timestamp_location"), "{e}");
        assert!(e.contains("unknown time zone \"Europe/Berln\""), "{e}");
    }
}
