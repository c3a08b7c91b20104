//! The filter grammar of the cloud directories, Directory Connector's (`include:`/`exclude:`
//! and the source's other keywords, then the source's native query after `|`), parsed once
//! into typed filters. Where Directory Connector silently ignores a filter it cannot read (an
//! unknown keyword, a value with a `:`, a clause it does not combine), this is a config error
//! that names the problem: an ignored filter syncs everyone.

use std::collections::BTreeSet;

/// Which values a set clause keeps. Values are compared trimmed and lower-cased, exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SetFilter {
    #[default]
    All,
    Include(BTreeSet<String>),
    Exclude(BTreeSet<String>),
}

impl SetFilter {
    /// Whether `value` (an email, a group name) passes; a missing value passes only `All` and
    /// `Exclude`.
    pub fn keeps(&self, value: Option<&str>) -> bool {
        let value = value.map(|v| v.trim().to_lowercase());
        match self {
            SetFilter::All => true,
            SetFilter::Include(values) => value.is_some_and(|v| values.contains(&v)),
            SetFilter::Exclude(values) => value.is_none_or(|v| !values.contains(&v)),
        }
    }

    pub fn is_all(&self) -> bool {
        *self == SetFilter::All
    }
}

/// One `keyword:value,value` clause, the keyword as the source spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub keyword: &'static str,
    pub values: BTreeSet<String>,
}

/// A filter as written: its clauses and its native query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub clauses: Vec<Clause>,
    pub native: Option<String>,
}

/// How a source's filter is written.
pub struct Grammar {
    /// The clause keywords it takes, matched case-insensitively.
    pub keywords: &'static [&'static str],
    /// Whether the part after `|` is the source's native query (else every `|` part is a
    /// clause).
    pub native: bool,
}

impl Grammar {
    /// Parses `text`.
    ///
    /// # Errors
    /// A message naming what cannot be read and how to write it.
    pub fn parse(&self, text: &str) -> Result<Parsed, String> {
        let mut parsed = Parsed::default();
        let (clauses, native) = match (self.native, text.split_once('|')) {
            // Only the first `|` divides: the native query may hold more.
            (true, Some((clauses, native))) => (vec![clauses], Some(native)),
            (true, None) => (vec![text], None),
            (false, _) => (text.split('|').collect(), None),
        };
        parsed.native = native
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        for (index, clause) in clauses.iter().map(|c| c.trim()).enumerate() {
            if clause.is_empty() {
                if index == 0 && (self.native || clauses.len() == 1) {
                    continue; // `| native` or an empty filter
                }
                return Err("has an empty clause between two `|`; remove the extra `|`".into());
            }
            parsed.clauses.push(self.clause(clause)?);
        }
        Ok(parsed)
    }

    fn clause(&self, clause: &str) -> Result<Clause, String> {
        let expected = self
            .keywords
            .iter()
            .map(|k| format!("{k}:"))
            .collect::<Vec<_>>()
            .join(", ");
        let Some((keyword, values)) = clause.split_once(':') else {
            return Err(format!(
                "{clause:?} is not a clause; write it as keyword:value,value with one of {expected}{}",
                match self.native {
                    true => " (a native query goes after `|`)",
                    false =>
                        " (this directory has no native query: each part between `|` is a clause)",
                }
            ));
        };
        let Some(&keyword) = self
            .keywords
            .iter()
            .find(|k| k.eq_ignore_ascii_case(keyword.trim()))
        else {
            return Err(format!(
                "{:?} is not a filter keyword; use one of {expected}",
                keyword.trim()
            ));
        };
        if values.contains(':') {
            return Err(format!(
                "the values of {keyword}: contain a `:` ({:?}), which cannot be told from a keyword; one clause per `|` is written keyword:value,value",
                values.trim()
            ));
        }
        let values: BTreeSet<String> = values
            .split(',')
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("{keyword}: lists no value"));
        }
        Ok(Clause { keyword, values })
    }
}

/// The usual filter of users or groups: an `include:`/`exclude:` set of emails or names, and
/// the native query where the source has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameFilter {
    pub set: SetFilter,
    pub native: Option<String>,
}

impl NameFilter {
    /// # Errors
    /// As [`Grammar::parse`], and for more than one clause.
    pub fn parse(text: &str, native: bool) -> Result<NameFilter, String> {
        let parsed = Grammar {
            keywords: &["include", "exclude"],
            native,
        }
        .parse(text)?;
        if !native && parsed.clauses.len() > 1 {
            return Err("takes one include: or exclude: clause; this directory has no native query after `|`".into());
        }
        let mut filter = NameFilter {
            set: SetFilter::All,
            native: parsed.native,
        };
        if let Some(clause) = parsed.clauses.into_iter().next() {
            filter.set = set_of(clause);
        }
        Ok(filter)
    }
}

/// `include:`/`exclude:` as a set filter.
pub fn set_of(clause: Clause) -> SetFilter {
    match clause.keyword {
        "include" => SetFilter::Include(clause.values),
        _ => SetFilter::Exclude(clause.values),
    }
}

/// The filter a setting holds (none: everything), or its problem recorded under `key`.
pub(crate) fn from_setting(
    key: &str,
    value: &Option<String>,
    problems: &mut Vec<crate::config::Problem>,
) -> NameFilter {
    match crate::config::non_blank(value).map(|text| NameFilter::parse(text, true)) {
        Some(Ok(filter)) => filter,
        Some(Err(message)) => {
            problems.push(crate::config::Problem {
                key: key.into(),
                message,
            });
            NameFilter::default()
        }
        None => NameFilter::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn set_clause_and_native_query() {
        let filter = NameFilter::parse(
            " Exclude: Joe@X.com , ann@x.com | orgUnitPath='/A|B' ",
            true,
        )
        .unwrap();
        assert_eq!(
            filter.set,
            SetFilter::Exclude(set(&["ann@x.com", "joe@x.com"]))
        );
        assert_eq!(filter.native.as_deref(), Some("orgUnitPath='/A|B'"));
        assert!(!filter.set.keeps(Some(" JOE@x.com")));
        assert!(filter.set.keeps(Some("bo@x.com")));

        let native_only = NameFilter::parse("|name:Sales*", true).unwrap();
        assert!(native_only.set.is_all());
        assert_eq!(native_only.native.as_deref(), Some("name:Sales*"));
        assert_eq!(NameFilter::parse("", true).unwrap(), NameFilter::default());
    }

    #[test]
    fn what_directory_connector_would_ignore_is_an_error_naming_it() {
        let unknown = NameFilter::parse("includes:a@x.com", true).unwrap_err();
        assert!(
            unknown.contains("\"includes\"") && unknown.contains("include:"),
            "{unknown}"
        );
        let colon = NameFilter::parse("include:Sales: EMEA", true).unwrap_err();
        assert!(colon.contains("`:`"), "{colon}");
        let bare = NameFilter::parse("a@x.com", true).unwrap_err();
        assert!(bare.contains("not a clause"), "{bare}");
        let empty = NameFilter::parse("include: , ", true).unwrap_err();
        assert!(empty.contains("no value"), "{empty}");
        let no_native = NameFilter::parse("include:a|b", false).unwrap_err();
        assert!(no_native.contains("native"), "{no_native}");
    }

    #[test]
    fn include_keeps_only_listed_values_and_never_a_missing_one() {
        let include = SetFilter::Include(set(&["sales"]));
        assert!(include.keeps(Some("Sales")));
        assert!(!include.keeps(Some("IT")));
        assert!(!include.keeps(None));
        assert!(SetFilter::Exclude(set(&["it"])).keeps(None));
    }
}
