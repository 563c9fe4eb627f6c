//! Parser for a pool's feature flags:
//! `zpool get -H -o property,value all <pool>`, of which the `feature@…`
//! rows are kept (`disabled`, `enabled` or `active`).

use std::collections::BTreeMap;

use super::{numbered_lines, ParseError};

/// The state of a pool feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureState {
    /// Not enabled: the pool cannot use it until `zpool set feature@…=enabled`.
    Disabled,
    /// Enabled, not yet used.
    Enabled,
    /// In use (it may now be needed to import the pool).
    Active,
}

/// A pool's features by name (without `feature@`). A feature this
/// OpenZFS does not know is absent.
pub type PoolFeatures = BTreeMap<String, FeatureState>;

/// Parse `zpool get -H -o property,value all <pool>`: the `feature@` rows.
pub fn parse_pool_features(out: &str) -> Result<PoolFeatures, ParseError> {
    let mut map = PoolFeatures::new();
    for (n, line) in numbered_lines(out) {
        let Some((prop, value)) = line.split_once('\t') else {
            return Err(ParseError::field_count(n, line, 2, 1));
        };
        let Some(name) = prop.strip_prefix("feature@") else {
            continue;
        };
        let state = match value {
            "disabled" => FeatureState::Disabled,
            "enabled" => FeatureState::Enabled,
            "active" => FeatureState::Active,
            _ => return Err(invalid(n, line, "state", value, "unknown feature state")),
        };
        if name.is_empty() || name.len() > 256 {
            return Err(invalid(n, line, "property", prop, "bad feature name"));
        }
        map.insert(name.to_string(), state);
    }
    Ok(map)
}

fn invalid(
    line_no: usize,
    line: &str,
    field: &'static str,
    value: &str,
    reason: &'static str,
) -> ParseError {
    ParseError::InvalidField {
        line_no,
        line: super::excerpt(line, 512),
        field,
        value: super::excerpt(value, 256),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_read_and_other_properties_skipped() {
        let out = "size\t268435456\nfeature@async_destroy\tenabled\nfeature@bookmarks\tdisabled\nfeature@encryption\tactive\n";
        let f = parse_pool_features(out).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f["bookmarks"], FeatureState::Disabled);
        assert_eq!(f["encryption"], FeatureState::Active);
        assert!(!f.contains_key("size"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_output_never_panics(s in "(\\PC|\t|\n)*") {
            let _ = parse_pool_features(&s);
        }
    }

    #[test]
    fn a_hostile_row_is_refused_by_its_line() {
        let e = parse_pool_features("feature@x\tmaybe\n").unwrap_err();
        assert!(e.to_string().contains("unknown feature state"), "{e}");
        assert!(parse_pool_features("no tab here\n").is_err());
    }
}
