//! Distinguished names compared the way LDAP compares them, and the member references built
//! from them.

/// The form a group's member value is compared in: a DN normalised, a `memberUid` value (which
/// is not a DN) trimmed and lower-cased, and an AD extended DN (`<GUID=…>;<SID=…>;CN=…`) by
/// its GUID alone. Users and groups carry aliases in the same form.
pub fn member_reference(value: &str) -> Option<String> {
    let value = value.trim();
    // Schemas that require a member often carry an empty placeholder value.
    if value.is_empty() {
        None
    } else if value.starts_with('<') {
        Some(extended_dn_reference(value))
    } else if looks_like_dn(value) {
        Some(normalize_dn(value))
    } else {
        Some(value.to_lowercase())
    }
}

/// The reference an object with this objectGUID (as [`super::format_guid`] prints it) is named
/// by in an extended DN.
pub fn guid_reference(guid: &str) -> String {
    format!("<guid={}>", guid.to_ascii_lowercase())
}

/// `<GUID=…>;<SID=…>;CN=…`: the GUID when there is one, else the DN after the `<…>;` parts.
fn extended_dn_reference(value: &str) -> String {
    let mut rest = value;
    while let Some(part) = rest.strip_prefix('<') {
        let Some((inner, after)) = part.split_once('>') else {
            break;
        };
        if let Some((kind, guid)) = inner.split_once('=')
            && kind.eq_ignore_ascii_case("guid")
        {
            return guid_reference(guid.trim());
        }
        rest = after.strip_prefix(';').unwrap_or(after);
    }
    normalize_dn(rest)
}

/// The plain DN of an extended one (the extended DN control names the entries it returns that
/// way too); a plain DN as it is. No DN starts with `<`.
pub fn strip_extended(dn: &str) -> &str {
    let mut rest = dn;
    while let Some(part) = rest.strip_prefix('<') {
        let Some((_, after)) = part.split_once('>') else {
            break;
        };
        rest = after.strip_prefix(';').unwrap_or(after);
    }
    rest
}

/// `cn=a,dc=b` is a DN; `alice` (a memberUid value) is not.
fn looks_like_dn(value: &str) -> bool {
    value.contains('=')
}

/// Characters a normalised attribute value escapes with a backslash.
fn needs_escape(c: char) -> bool {
    matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
}

/// Normalises a DN for comparison: attribute types and values lower-cased, spaces around
/// separators removed, escapes decoded and re-encoded one way (`\2C` and `\,` compare equal).
pub fn normalize_dn(dn: &str) -> String {
    // Nearly every DN is plain ASCII without escapes: normalise those by slicing, without the
    // per-character buffer the general case needs. Both give the same result.
    if dn.is_ascii() && !dn.contains('\\') {
        normalize_plain_dn(dn)
    } else {
        normalize_any_dn(dn)
    }
}

/// [`normalize_dn`] for an ASCII DN without escapes: RDN by RDN, `type=value` separated by
/// `,` or `+`.
fn normalize_plain_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut rest = dn.trim();
    loop {
        let Some(eq) = rest.find('=') else {
            // A trailing part without `=` is kept as it is, lower-cased.
            push_lowercase(&mut out, rest.trim());
            return out;
        };
        push_lowercase(&mut out, rest[..eq].trim());
        out.push('=');
        rest = &rest[eq + 1..];
        let end = rest.find([',', '+']).unwrap_or(rest.len());
        for c in rest[..end].trim().chars() {
            if needs_escape(c) {
                out.push('\\');
            }
            out.push(c.to_ascii_lowercase());
        }
        let Some(separator) = rest[end..].chars().next() else {
            return out;
        };
        out.push(separator);
        rest = &rest[end + 1..];
    }
}

fn push_lowercase(out: &mut String, ascii: &str) {
    out.extend(ascii.chars().map(|c| c.to_ascii_lowercase()));
}

/// [`normalize_dn`] for any DN: decodes escapes (`\,`, `\2C`) and lower-cases Unicode. Hex
/// escapes are bytes of UTF-8 (RFC 4514), so `\C3\A9` is `é`; a value whose escaped bytes are
/// not UTF-8 keeps them as U+FFFD.
fn normalize_any_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    // The current type or value as raw bytes, since one character may span several escapes.
    let mut value: Vec<u8> = Vec::new();
    let mut chars = dn.trim().chars().peekable();
    let mut in_value = false;
    let flush = |value: &mut Vec<u8>, out: &mut String| {
        let decoded = String::from_utf8_lossy(value);
        for c in decoded.trim().chars() {
            if needs_escape(c) {
                out.push('\\');
            }
            out.extend(c.to_lowercase());
        }
        value.clear();
    };
    let push = |value: &mut Vec<u8>, c: char| {
        value.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let hex: String = chars.clone().take(2).collect();
                if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    chars.next();
                    chars.next();
                    value.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                } else if let Some(escaped) = chars.next() {
                    push(&mut value, escaped);
                }
            }
            '=' if !in_value => {
                out.push_str(String::from_utf8_lossy(&value).trim());
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
            _ => push(&mut value, c),
        }
    }
    if in_value {
        flush(&mut value, &mut out);
    } else {
        out.push_str(&String::from_utf8_lossy(&value).trim().to_lowercase());
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

    #[test]
    fn extended_dns_are_named_by_their_guid() {
        let guid = "45dffc0f-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        assert_eq!(
            member_reference(
                "<GUID=45DFFC0F-1A2B-4C3D-8E9F-0A1B2C3D4E5F>;<SID=S-1-5-21-1-2-3-1161>;CN=User 059,OU=People,DC=test,DC=lan"
            ),
            Some(guid_reference(guid))
        );
        // A rename changes the DN part only.
        assert_eq!(
            member_reference(&format!(
                "<GUID={guid}>;CN=Renamed,OU=Elsewhere,DC=test,DC=lan"
            )),
            Some(guid_reference(guid))
        );
        assert_eq!(
            member_reference("<SID=S-1-5-21-1>;CN=Bob,DC=x"),
            Some("cn=bob,dc=x".into())
        );
        assert_eq!(
            strip_extended("<GUID=1>;<SID=S-1>;CN=Backend Team,OU=Groups,DC=x"),
            "CN=Backend Team,OU=Groups,DC=x"
        );
        assert_eq!(strip_extended("cn=a,dc=x"), "cn=a,dc=x");
    }

    /// RFC 4514: a hex escape is one byte of the value's UTF-8, so `\C3\A9` is `é`.
    #[test]
    fn hex_escapes_decode_as_utf8() {
        assert_eq!(
            normalize_dn("cn=Ren\\C3\\A9,ou=People,dc=x"),
            normalize_dn("cn=René,ou=People,dc=x")
        );
        assert_eq!(normalize_dn("CN=RENÉ\\2C Jr,DC=X"), "cn=rené\\, jr,dc=x");
        // Bytes that are not UTF-8 do not vanish or merge with their neighbours.
        assert_eq!(normalize_dn("cn=a\\FFb,dc=x"), "cn=a\u{fffd}b,dc=x");
    }

    /// The ASCII shortcut must agree with the general normaliser on every plain DN, odd ones
    /// included (empty parts, `=` in values, stray separators, tabs).
    #[test]
    fn plain_dn_shortcut_matches_the_general_normaliser() {
        const ALPHABET: &[u8] = b"aZ =,+ \t\";<>x=9,";
        // A small deterministic generator (xorshift), so the cases are the same every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 14) as usize;
            let dn: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
                .collect();
            assert_eq!(normalize_plain_dn(&dn), normalize_any_dn(&dn), "{dn:?}");
        }
        for dn in [
            "",
            " ",
            "cn=a,",
            "cn=a,dc",
            "a,b=c",
            "cn==x",
            "cn = \"Q\" ; <x> , DC = Org ",
            "UID=Bob+CN=Bob Smith,OU=People",
            "\u{b}cn=a\u{c}",
        ] {
            assert_eq!(normalize_plain_dn(dn), normalize_any_dn(dn), "{dn:?}");
        }
    }
}
