//! Test certificate authorities: a CA and server certificates for loopback servers, made with the
//! `openssl` command so the tests exercise real PEM files the way an admin would supply them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throw-away CA in a directory, able to issue server certificates for loopback names.
pub struct TestCa {
    dir: PathBuf,
}

/// A server certificate and its key, issued by a [`TestCa`].
#[derive(Clone, Debug)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Creates a CA (`ca.pem`, `ca.key`) in `dir`, which must exist.
    pub fn create(dir: &Path) -> TestCa {
        let ca = TestCa {
            dir: dir.to_path_buf(),
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=orgsync test CA",
            "-keyout",
            path_str(&ca.dir.join("ca.key")),
            "-out",
            path_str(&ca.ca_pem()),
        ]);
        ca
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate named `name` valid for `localhost` and the given IP addresses.
    pub fn issue_server(&self, name: &str, ips: &[&str]) -> ServerCert {
        self.issue(name, "serverAuth", ips)
    }

    /// Issues a client certificate (for mutual TLS tests).
    pub fn issue_client(&self, name: &str) -> ServerCert {
        self.issue(name, "clientAuth", &[])
    }

    fn issue(&self, name: &str, usage: &str, ips: &[&str]) -> ServerCert {
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.pem"));
        let ext = self.dir.join(format!("{name}.ext"));
        let mut san = vec!["DNS:localhost".to_string()];
        san.extend(ips.iter().map(|ip| format!("IP:{ip}")));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n",
                san.join(",")
            ),
        )
        .expect("write openssl extension file");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr),
            "-CA",
            path_str(&self.ca_pem()),
            "-CAkey",
            path_str(&self.dir.join("ca.key")),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            path_str(&ext),
            "-out",
            path_str(&cert),
        ]);
        set_mode_0600(&key);
        ServerCert { cert, key }
    }
}

fn set_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (install it with scripts/setup.sh)");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
