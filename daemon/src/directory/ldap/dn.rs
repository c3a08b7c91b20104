//! Distinguished names compared the way LDAP compares them, and the member references built
//! from them.

/// The form a group's member value is compared in: a DN normalised, a `memberUid` value (which
/// is not a DN) trimmed and lower-cased. Users and groups carry aliases in the same form.
pub fn member_reference(value: &str) -> Option<String> {
    let value = value.trim();
    // Schemas that require a member often carry an empty placeholder value.
    if value.is_empty() {
        None
    } else if looks_like_dn(value) {
        Some(normalize_dn(value))
    } else {
        Some(value.to_lowercase())
    }
}

/// `cn=a,dc=b` is a DN; `alice` (a memberUid value) is not.
fn looks_like_dn(value: &str) -> bool {
    value.contains('=')
}

/// Normalises a DN for comparison: attribute types and values lower-cased, spaces around
/// separators removed, escapes decoded and re-encoded one way (`\2C` and `\,` compare equal).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut value = String::new();
    let mut chars = dn.trim().chars().peekable();
    let mut in_value = false;
    let flush = |value: &mut String, out: &mut String| {
        let trimmed = value.trim();
        for c in trimmed.chars() {
            if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
                out.push('\\');
            }
            out.extend(c.to_lowercase());
        }
        value.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let hex: String = chars.clone().take(2).collect();
                if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    chars.next();
                    chars.next();
                    let byte = u8::from_str_radix(&hex, 16).unwrap_or(b'?');
                    value.push(byte as char);
                } else if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
            }
            '=' if !in_value => {
                out.push_str(value.trim());
                out.make_ascii_lowercase();
                out.push('=');
                value.clear();
                in_value = true;
            }
            ',' | '+' if in_value => {
                flush(&mut value, &mut out);
                out.push(c);
                in_value = false;
            }
            _ => value.push(c),
        }
    }
    if in_value {
        flush(&mut value, &mut out);
    } else {
        out.push_str(&value.trim().to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_normalisation_ignores_case_spaces_and_escape_style() {
        assert_eq!(
            normalize_dn("CN=Alice Smith, OU=People ,DC=Example,DC=org"),
            "cn=alice smith,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            normalize_dn("cn=Smith\\, Bob,dc=x"),
            normalize_dn("CN=smith\\2c bob,DC=X")
        );
        assert_ne!(normalize_dn("cn=a,dc=x"), normalize_dn("cn=b,dc=x"));
    }
}
