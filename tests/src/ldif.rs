//! LDIF text for test directories, and the OpenLDAP command-line tools that load and read it.
//!
//! Tests build their directory content as LDIF and load it with `ldapadd`, the way an admin
//! would, rather than through the LDAP client library the product uses: a bug in that library
//! then cannot hide itself by writing and reading the same wrong thing.
//!
//! [`Ldif`] builds the usual OpenLDAP shapes (people under `ou=people`, groups under `ou=groups`).
//! [`LdapCli`] runs `ldapadd`/`ldapmodify`/`ldapsearch`/`ldapdelete` against any server with a
//! clean environment: the machine's `/etc/ldap/ldap.conf` and any `~/.ldaprc` are ignored, TLS
//! certificates are always verified, and only the CA the test passes is trusted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;

use crate::ports::{run_command, show_command};

/// Builds LDIF for a directory whose entries live under `suffix`: people as `inetOrgPerson` under
/// `ou=people`, groups under `ou=groups`.
#[derive(Clone, Debug)]
pub struct Ldif {
    suffix: String,
}

impl Ldif {
    /// A builder for entries under `suffix`, e.g. `dc=example,dc=org`.
    pub fn new(suffix: &str) -> Ldif {
        Ldif {
            suffix: suffix.to_string(),
        }
    }

    /// The suffix entry itself (`dcObject` + `organization`), `ou=people` and `ou=groups`.
    /// Load it first: an empty database has not even the suffix entry.
    pub fn base(&self) -> String {
        let (attr, value) = first_rdn(&self.suffix);
        let mut out = String::new();
        if attr.eq_ignore_ascii_case("dc") {
            out += &entry(
                &self.suffix,
                &[
                    ("objectClass", "dcObject"),
                    ("objectClass", "organization"),
                    ("dc", value),
                    ("o", value),
                ],
            );
        } else {
            out += &entry(
                &self.suffix,
                &[("objectClass", "organization"), ("o", value)],
            );
        }
        out += &self.ou("people");
        out += &self.ou("groups");
        out
    }

    /// An `organizationalUnit` directly under the suffix.
    pub fn ou(&self, name: &str) -> String {
        entry(
            &format!("ou={},{}", escape_dn_value(name), self.suffix),
            &[("objectClass", "organizationalUnit"), ("ou", name)],
        )
    }

    /// The DN [`Ldif::person`] gives `uid`.
    pub fn person_dn(&self, uid: &str) -> String {
        format!("uid={},ou=people,{}", escape_dn_value(uid), self.suffix)
    }

    /// The DN the group builders give `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={},ou=groups,{}", escape_dn_value(cn), self.suffix)
    }

    /// An `inetOrgPerson` `uid=<uid>,ou=people,<suffix>`. `sn` is the last word of `cn` and
    /// `givenName` the first (when `cn` has two or more words), as directory tools usually fill them.
    pub fn person(&self, uid: &str, cn: &str, mail: Option<&str>) -> String {
        let words: Vec<&str> = cn.split_whitespace().collect();
        let sn = words.last().copied().unwrap_or(cn);
        let mut attrs = vec![
            ("objectClass", "inetOrgPerson"),
            ("uid", uid),
            ("cn", cn),
            ("sn", sn),
        ];
        if words.len() >= 2 {
            attrs.push(("givenName", words[0]));
        }
        if let Some(mail) = mail {
            attrs.push(("mail", mail));
        }
        entry(&self.person_dn(uid), &attrs)
    }

    /// A `groupOfNames` `cn=<cn>,ou=groups,<suffix>` with the given member DNs.
    ///
    /// The schema requires at least one `member`; for an empty group this writes one empty
    /// `member` value (the empty DN), which is what directory admins commonly do.
    pub fn group_of_names(&self, cn: &str, member_dns: &[&str]) -> String {
        self.group("groupOfNames", "member", cn, member_dns)
    }

    /// A `groupOfUniqueNames` `cn=<cn>,ou=groups,<suffix>` (members in `uniqueMember`). An empty
    /// group gets one empty `uniqueMember`, as with [`Ldif::group_of_names`].
    pub fn group_of_unique_names(&self, cn: &str, member_dns: &[&str]) -> String {
        self.group("groupOfUniqueNames", "uniqueMember", cn, member_dns)
    }

    /// An RFC 2307 `posixGroup` `cn=<cn>,ou=groups,<suffix>` whose members are user names
    /// (`memberUid`), not DNs.
    pub fn posix_group(&self, cn: &str, gid: u32, member_uids: &[&str]) -> String {
        let gid = gid.to_string();
        let mut attrs = vec![
            ("objectClass", "posixGroup"),
            ("cn", cn),
            ("gidNumber", gid.as_str()),
        ];
        attrs.extend(member_uids.iter().map(|uid| ("memberUid", *uid)));
        entry(&self.group_dn(cn), &attrs)
    }

    /// A bind account `cn=<cn>,<suffix>` (`organizationalRole` + `simpleSecurityObject`) for
    /// tests that must not bind as the rootdn: only non-root binds are subject to size limits.
    pub fn service_account(&self, cn: &str, password: &str) -> String {
        entry(
            &format!("cn={},{}", escape_dn_value(cn), self.suffix),
            &[
                ("objectClass", "organizationalRole"),
                ("objectClass", "simpleSecurityObject"),
                ("cn", cn),
                ("userPassword", password),
            ],
        )
    }

    fn group(&self, class: &str, member_attr: &str, cn: &str, member_dns: &[&str]) -> String {
        let mut attrs = vec![("objectClass", class), ("cn", cn)];
        if member_dns.is_empty() {
            attrs.push((member_attr, ""));
        }
        attrs.extend(member_dns.iter().map(|dn| (member_attr, *dn)));
        entry(&self.group_dn(cn), &attrs)
    }
}

/// One LDIF record adding `dn` with `attrs` (in order, repeated names for multiple values),
/// followed by a blank line. Values that LDIF cannot carry verbatim are base64-encoded.
pub fn entry(dn: &str, attrs: &[(&str, &str)]) -> String {
    let mut out = line("dn", dn);
    for (name, value) in attrs {
        out += &line(name, value);
    }
    out.push('\n');
    out
}

/// One `name: value` line (`name:: base64` when RFC 2849 requires it).
pub fn line(name: &str, value: &str) -> String {
    if is_safe_string(value) {
        if value.is_empty() {
            format!("{name}:\n")
        } else {
            format!("{name}: {value}\n")
        }
    } else {
        format!(
            "{name}:: {}\n",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// Like [`line`] for binary values (e.g. `unicodePwd`, `objectGUID`): always base64.
pub fn binary_line(name: &str, value: &[u8]) -> String {
    format!(
        "{name}:: {}\n",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

/// RFC 2849 SAFE-STRING: ASCII without NUL/CR/LF, not starting with space, ':' or '<', and (by
/// convention, since tools strip it) not ending with a space.
fn is_safe_string(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
}

/// Escapes an attribute value for use inside a DN (RFC 4514).
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for use inside a search filter (RFC 4515).
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 => {
                let _ = write!(out, "\\{b:02x}");
            }
            _ => out.push(b as char),
        }
    }
    out
}

/// `(attr, value)` of the first RDN of `dn`, unescaped only as far as plain suffixes need.
fn first_rdn(dn: &str) -> (&str, &str) {
    let rdn = dn.split(',').next().unwrap_or(dn);
    rdn.split_once('=')
        .map(|(a, v)| (a.trim(), v.trim()))
        .unwrap_or(("o", rdn))
}

/// Values of `attr` in `ldapsearch -LLL -o ldif-wrap=no` output, base64 ones decoded to bytes.
pub fn attribute_values(ldif: &str, attr: &str) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    for l in ldif.lines() {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case(attr) {
            continue;
        }
        if let Some(b64) = rest.strip_prefix(':') {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_else(|e| panic!("bad base64 in `{l}`: {e}"));
            values.push(decoded);
        } else {
            values.push(rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec());
        }
    }
    values
}

/// Values of `attr` as text (lossy for binary values). See [`attribute_values`].
pub fn attribute_strings(ldif: &str, attr: &str) -> Vec<String> {
    attribute_values(ldif, attr)
        .into_iter()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

/// The DNs of the entries in `ldapsearch -LLL` output (decoded when base64).
pub fn dns(ldif: &str) -> Vec<String> {
    attribute_strings(ldif, "dn")
}

/// How long one ldap-utils command may take before the test fails instead of hanging.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the OpenLDAP command-line tools (ldap-utils) against one server as one identity.
///
/// The environment is clean: `LDAPCONF=/dev/null` and an `LDAPRC` that does not exist keep the
/// machine's and the user's settings out, `LDAPTLS_REQCERT=demand` always verifies certificates,
/// and `LDAPTLS_CACERT` is the CA given to [`LdapCli::ca`] (without one, only the system CAs are
/// trusted, so a test CA's certificate is rejected). Referrals are never chased.
#[derive(Clone, Debug)]
pub struct LdapCli {
    url: String,
    bind: Option<(String, String)>,
    ca: Option<PathBuf>,
    starttls: bool,
}

/// What an ldap-utils command returned. The tools exit with the LDAP result code (0 success,
/// 4 size limit exceeded, 32 no such object, 49 invalid credentials, …) or 255 when they could
/// not connect.
#[derive(Clone, Debug)]
pub struct ToolOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (the LDAP result code for the last operation), -1 if killed by a signal.
    pub code: i32,
    /// Standard output (LDIF for searches).
    pub stdout: String,
    /// Standard error (the tool's diagnostics).
    pub stderr: String,
}

impl ToolOutput {
    fn from_output(command: String, out: Output) -> ToolOutput {
        ToolOutput {
            command,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The standard output, panicking with the tool's diagnostics if it failed.
    #[track_caller]
    pub fn ok(self) -> String {
        assert!(
            self.success(),
            "`{}` failed with exit code {}:\n{}{}",
            self.command,
            self.code,
            self.stderr,
            self.stdout
        );
        self.stdout
    }

    /// How many entries the search output holds (its `dn:` lines).
    pub fn entries(&self) -> usize {
        dns(&self.stdout).len()
    }
}

impl LdapCli {
    /// Anonymous access to `url`, e.g. `ldap://127.0.0.1:38389` or `ldaps://127.0.0.1:38636`.
    pub fn new(url: &str) -> LdapCli {
        LdapCli {
            url: url.to_string(),
            bind: None,
            ca: None,
            starttls: false,
        }
    }

    /// Simple bind as `dn` (for AD also `user@realm` or `DOMAIN\user`) with `password`.
    pub fn bind(mut self, dn: &str, password: &str) -> LdapCli {
        self.bind = Some((dn.to_string(), password.to_string()));
        self
    }

    /// Trust this CA (PEM) for `ldaps://` and StartTLS.
    pub fn ca(mut self, ca_pem: &Path) -> LdapCli {
        self.ca = Some(ca_pem.to_path_buf());
        self
    }

    /// Require StartTLS on an `ldap://` URL (`-ZZ`: fail if it cannot be negotiated).
    pub fn starttls(mut self) -> LdapCli {
        self.starttls = true;
        self
    }

    /// The URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `ldapsearch -LLL -o ldif-wrap=no` for `filter` in the subtree below `base`; `extra` goes
    /// before the base (e.g. `["-E", "pr=100/noprompt"]`, `["-s", "base"]`). Does not panic:
    /// check [`ToolOutput::code`] or call [`ToolOutput::ok`].
    pub fn try_search(
        &self,
        extra: &[&str],
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> ToolOutput {
        let mut args: Vec<&str> = vec!["-LLL", "-o", "ldif-wrap=no"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-b", base, filter]);
        args.extend_from_slice(attrs);
        self.run("ldapsearch", &args, None)
    }

    /// Like [`LdapCli::try_search`] without extras, panicking with the tool's stderr on failure.
    #[track_caller]
    pub fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        self.try_search(&[], base, filter, attrs).ok()
    }

    /// `ldapadd` of `ldif` (records without `changetype`). Stops at the first error.
    pub fn try_add(&self, ldif: &str) -> ToolOutput {
        self.run("ldapadd", &[], Some(ldif))
    }

    /// [`LdapCli::try_add`], panicking with `ldapadd`'s stderr on failure.
    #[track_caller]
    pub fn add(&self, ldif: &str) {
        self.try_add(ldif).ok();
    }

    /// `ldapmodify` of `ldif` (records with `changetype:`). Stops at the first error.
    pub fn try_modify(&self, ldif: &str) -> ToolOutput {
        self.run("ldapmodify", &[], Some(ldif))
    }

    /// [`LdapCli::try_modify`], panicking with `ldapmodify`'s stderr on failure.
    #[track_caller]
    pub fn modify(&self, ldif: &str) {
        self.try_modify(ldif).ok();
    }

    /// `ldapdelete` of one entry, panicking on failure.
    #[track_caller]
    pub fn delete(&self, dn: &str) {
        self.run("ldapdelete", &[dn], None).ok();
    }

    /// Runs any ldap-utils `tool` with the connection options and `args`, feeding `stdin`.
    pub fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> ToolOutput {
        let mut cmd = Command::new(tool);
        cmd.env_remove("LDAPNOINIT")
            .env("LDAPCONF", "/dev/null")
            .env("LDAPRC", "orgsync-testkit-no-ldaprc")
            .env("LDAPTLS_REQCERT", "demand")
            .env_remove("LDAPTLS_CACERTDIR")
            .env_remove("LDAPTLS_CERT")
            .env_remove("LDAPTLS_KEY");
        match &self.ca {
            Some(ca) => cmd.env("LDAPTLS_CACERT", ca),
            None => cmd.env_remove("LDAPTLS_CACERT"),
        };
        cmd.args(["-x", "-H", &self.url, "-o", "nettimeout=10"]);
        if self.starttls {
            cmd.arg("-ZZ");
        }
        if let Some((dn, password)) = &self.bind {
            cmd.args(["-D", dn, "-w", password]);
        }
        cmd.args(args);
        let shown = show_command(&cmd);
        let out = run_command(&mut cmd, stdin.map(str::as_bytes), TOOL_TIMEOUT);
        ToolOutput::from_output(shown, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_values_are_base64() {
        assert_eq!(line("cn", "Alice"), "cn: Alice\n");
        assert_eq!(line("cn", " lead"), "cn:: IGxlYWQ=\n");
        assert_eq!(line("cn", "Jürgen"), "cn:: SsO8cmdlbg==\n");
        assert_eq!(line("member", ""), "member:\n");
    }

    #[test]
    fn dn_and_filter_escaping() {
        assert_eq!(escape_dn_value("Smith, John"), "Smith\\, John");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(escape_filter_value("a*(b)\\"), "a\\2a\\28b\\29\\5c");
    }

    #[test]
    fn parses_search_output() {
        let out = "dn: uid=a,dc=x\nmail: a@x\nobjectGUID:: AAEC\n\ndn:: dWlkPWLDvCxkYz14\n";
        assert_eq!(dns(out), vec!["uid=a,dc=x", "uid=bü,dc=x"]);
        assert_eq!(attribute_values(out, "objectguid"), vec![vec![0, 1, 2]]);
        assert_eq!(attribute_strings(out, "mail"), vec!["a@x"]);
    }

    #[test]
    fn base_entries_for_dc_suffix() {
        let base = Ldif::new("dc=example,dc=org").base();
        assert!(
            base.starts_with("dn: dc=example,dc=org\nobjectClass: dcObject\n"),
            "{base}"
        );
        assert!(base.contains("dn: ou=people,dc=example,dc=org\n"));
        assert!(base.contains("dn: ou=groups,dc=example,dc=org\n"));
    }
}
