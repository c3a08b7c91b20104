//! Config files written by earlier releases. Keys that moved are read from their old place (and
//! said in every run's warnings) until the next `config set` rewrites the file with them in the
//! new place; a file that sets a key in both places is an error, since either could be meant.

use std::borrow::Cow;

use toml_edit::{DocumentMut, Item, Key, Table};

/// Keys that moved, old name → new name. The LDAP-only keys of `[sync]` moved to `[ldap]` when
/// other directory sources arrived (each source owns its table).
const MOVED: &[(&str, &str)] = &[
    ("sync.user_filter", "ldap.user_filter"),
    ("sync.group_filter", "ldap.group_filter"),
    ("sync.user_path", "ldap.user_path"),
    ("sync.group_path", "ldap.group_path"),
    ("sync.user_object_class", "ldap.user_object_class"),
    ("sync.group_object_class", "ldap.group_object_class"),
    ("sync.email_attribute", "ldap.email_attribute"),
    ("sync.group_name_attribute", "ldap.group_name_attribute"),
    ("sync.member_attribute", "ldap.member_attribute"),
    (
        "sync.use_email_prefix_suffix",
        "ldap.use_email_prefix_suffix",
    ),
    ("sync.email_prefix_attribute", "ldap.email_prefix_attribute"),
    ("sync.email_suffix", "ldap.email_suffix"),
    (
        "sync.creation_date_attribute",
        "ldap.creation_date_attribute",
    ),
    (
        "sync.revision_date_attribute",
        "ldap.revision_date_attribute",
    ),
    // `directory = "ldap"` became the table `[directory]` with `type = "ldap"`.
    ("directory", "directory.type"),
];

/// A key found in its old place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub from: &'static str,
    pub to: &'static str,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is now {}; it is read from its old place until the next `orgsync config set` moves it there",
            self.from, self.to
        )
    }
}

/// The current name of a key an earlier release called `key`, if it moved.
pub fn renamed(key: &str) -> Option<&'static str> {
    MOVED
        .iter()
        .find(|(from, _)| *from == key)
        .map(|(_, to)| *to)
}

/// `text` with every moved key in its new place, and which keys were moved. Text that is not
/// TOML comes back as it is, for the parser to report.
///
/// # Errors
/// When a key is set both in its old and in its new place.
pub fn upgrade_text(text: &str) -> Result<(Cow<'_, str>, Vec<Moved>), String> {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok((Cow::Borrowed(text), Vec::new()));
    };
    let moved = upgrade(&mut doc)?;
    Ok(match moved.is_empty() {
        true => (Cow::Borrowed(text), moved),
        false => (Cow::Owned(doc.to_string()), moved),
    })
}

/// Moves every moved key of `doc` to its new place, keeping its value (and comments).
///
/// # Errors
/// When a key is set both in its old and in its new place.
pub fn upgrade(doc: &mut DocumentMut) -> Result<Vec<Moved>, String> {
    let mut moved = Vec::new();
    for &(from, to) in MOVED {
        if is_set(doc, from) && is_set(doc, to) {
            return Err(format!(
                "{from} and {to} are both set; {from} is the old name of {to}: remove {from}"
            ));
        }
        let Some(taken) = take(doc, from) else {
            continue;
        };
        put(doc, to, taken)?;
        moved.push(Moved { from, to });
    }
    Ok(moved)
}

/// Removes and returns the key (with its comments) and value at a dotted key (one or two
/// parts); a table emptied by it goes too. A top-level key is only taken when it is a value.
fn take(doc: &mut DocumentMut, key: &str) -> Option<(Key, Item)> {
    let Some((table, name)) = key.split_once('.') else {
        if !doc.get(key)?.is_value() {
            return None;
        }
        let found = doc.key(key)?.clone();
        return doc.remove(key).map(|item| (found, item));
    };
    let target = doc.get_mut(table)?.as_table_like_mut()?;
    let found = target.key(name)?.clone();
    let item = target.remove(name)?;
    if target.is_empty() {
        doc.remove(table);
    }
    Some((found, item))
}

/// Whether a dotted key holds a value (a top-level table is not one).
fn is_set(doc: &DocumentMut, key: &str) -> bool {
    match key.split_once('.') {
        None => doc.get(key).is_some_and(Item::is_value),
        Some((table, name)) => doc
            .get(table)
            .and_then(Item::as_table_like)
            .is_some_and(|t| t.contains_key(name)),
    }
}

/// Puts `item` at the dotted key `to`, keeping the comments of the key it was taken from when
/// the name stays. A table it creates comes first in the file (where `directory` was).
fn put(doc: &mut DocumentMut, to: &str, (from, item): (Key, Item)) -> Result<(), String> {
    let (table, name) = to.split_once('.').unwrap_or((to, ""));
    if doc.get(table).is_none() {
        let mut created = Table::new();
        created.set_position(Some(-1));
        doc.insert(table, Item::Table(created));
    }
    let Some(target) = doc.get_mut(table).and_then(Item::as_table_like_mut) else {
        return Err(format!("{table} must be a table ([{table}]) to hold {to}"));
    };
    match from.get() == name {
        true => target.entry_format(&from).or_insert(item),
        false => target.entry(name).or_insert(item),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_keys_move_from_sync_with_their_values() {
        let text =
            "[sync]\nusers = true\nuser_path = \"ou=people\" # where\n\n[ldap]\nhost = \"h\"\n";
        let (out, moved) = upgrade_text(text).unwrap();
        assert_eq!(
            moved,
            vec![Moved {
                from: "sync.user_path",
                to: "ldap.user_path"
            }]
        );
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(doc["ldap"]["user_path"].as_str(), Some("ou=people"));
        assert!(doc["sync"].get("user_path").is_none());
        assert_eq!(doc["sync"]["users"].as_bool(), Some(true));
    }

    #[test]
    fn an_emptied_table_goes_and_a_scalar_directory_becomes_a_table() {
        let (out, moved) =
            upgrade_text("directory = \"ldap\"\n[sync]\nuser_path = \"x\"\n").unwrap();
        assert_eq!(moved.len(), 2);
        let doc: DocumentMut = out.parse().unwrap();
        assert!(doc.get("sync").is_none(), "{out}");
        assert_eq!(doc["directory"]["type"].as_str(), Some("ldap"));
    }

    #[test]
    fn a_key_in_both_places_is_an_error_naming_both() {
        let err =
            upgrade_text("[sync]\nuser_path = \"a\"\n[ldap]\nuser_path = \"b\"\n").unwrap_err();
        assert!(
            err.contains("sync.user_path") && err.contains("ldap.user_path"),
            "{err}"
        );
    }

    #[test]
    fn a_current_file_is_returned_as_it_is() {
        let text = "[directory]\ntype = \"ldap\"\n[ldap]\nuser_path = \"a\"\n";
        let (out, moved) = upgrade_text(text).unwrap();
        assert!(moved.is_empty());
        assert!(matches!(out, Cow::Borrowed(_)));
    }
}
