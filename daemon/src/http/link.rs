//! `Link` headers (RFC 8288), for vendors that page with them (Okta): every header field is
//! read, each may hold several comma-separated links, and parameters come in any order, quoted
//! or not.

use reqwest::header::HeaderMap;

/// The target of the link with relation `rel` (e.g. `next`), if an answer has one. The target
/// is returned verbatim, to be followed as it is.
pub fn link_target(headers: &HeaderMap, rel: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(links)
        .find(|(_, rels)| rels.split_whitespace().any(|r| r.eq_ignore_ascii_case(rel)))
        .map(|(target, _)| target.to_string())
}

/// The links of one header field: `(target, rel)`, splitting on commas outside `<…>` and
/// outside quoted parameter values.
fn links(value: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim();
        rest = &rest[open + close + 1..];
        // The parameters run to the next comma that is not inside quotes.
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == ',' && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let params = &rest[..end];
        rest = &rest[end..];
        let rel = params.split(';').find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("rel")
                .then(|| value.trim().trim_matches('"'))
        });
        found.push((target, rel.unwrap_or_default()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("link", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_next_link_is_found_in_any_of_several_header_fields() {
        let h = headers(&[
            "<https://o.example/api/v1/users?limit=200>; rel=\"self\"",
            "<https://o.example/api/v1/users?after=00u1&limit=200>; rel=\"next\"",
        ]);
        assert_eq!(
            link_target(&h, "next").as_deref(),
            Some("https://o.example/api/v1/users?after=00u1&limit=200")
        );
        assert_eq!(
            link_target(&h, "self").as_deref(),
            Some("https://o.example/api/v1/users?limit=200")
        );
    }

    #[test]
    fn links_joined_by_commas_with_parameters_in_any_order_and_unquoted() {
        let h = headers(&[
            "<https://o.example/a?x=1,2>; title=\"a, b\"; rel=self, <https://o.example/b>; type=\"x\"; REL=next",
        ]);
        assert_eq!(
            link_target(&h, "next").as_deref(),
            Some("https://o.example/b")
        );
        assert_eq!(
            link_target(&h, "self").as_deref(),
            Some("https://o.example/a?x=1,2")
        );
    }

    #[test]
    fn no_next_link_is_the_last_page() {
        assert_eq!(
            link_target(&headers(&["<https://o/a>; rel=\"self\""]), "next"),
            None
        );
        assert_eq!(link_target(&HeaderMap::new(), "next"), None);
        // A relation list names several relations.
        let h = headers(&["<https://o/b>; rel=\"prev next\""]);
        assert_eq!(link_target(&h, "next").as_deref(), Some("https://o/b"));
    }
}
