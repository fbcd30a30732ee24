//! A throwaway PKI made with the `openssl` command: CAs, a broker certificate
//! for `127.0.0.1`/`localhost`, and client certificates whose keys come in
//! each PEM format a box may be given (PKCS#8, PKCS#1 RSA, SEC1 EC).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use rumqttc::{MqttOptions, TlsConfiguration, Transport};

/// How a private key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// RSA in PKCS#8 (`BEGIN PRIVATE KEY`), openssl 3's default.
    RsaPkcs8,
    /// RSA in PKCS#1 (`BEGIN RSA PRIVATE KEY`), the "traditional" format.
    RsaPkcs1,
    /// P-256 in SEC1 (`BEGIN EC PRIVATE KEY`).
    EcSec1,
}

impl KeyFormat {
    pub const ALL: [KeyFormat; 3] = [KeyFormat::RsaPkcs8, KeyFormat::RsaPkcs1, KeyFormat::EcSec1];

    fn pem_label(self) -> &'static str {
        match self {
            KeyFormat::RsaPkcs8 => "-----BEGIN PRIVATE KEY-----",
            KeyFormat::RsaPkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
            KeyFormat::EcSec1 => "-----BEGIN EC PRIVATE KEY-----",
        }
    }
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A self-signed CA that signs certificates into its directory.
#[derive(Debug, Clone)]
pub struct Ca {
    dir: PathBuf,
    pub cert: PathBuf,
    key: PathBuf,
}

static SERIAL: AtomicU32 = AtomicU32::new(1);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Readable by mosquitto after it drops root.
fn world_readable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn new_key(dir: &Path, name: &str, format: KeyFormat) -> PathBuf {
    let file = format!("{name}.key");
    match format {
        KeyFormat::RsaPkcs8 => {
            openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &file])
        }
        KeyFormat::RsaPkcs1 => openssl(dir, &["genrsa", "-traditional", "-out", &file, "2048"]),
        KeyFormat::EcSec1 => {
            openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &file])
        }
    }
    let path = dir.join(file);
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with(format.pem_label()), "{format:?} key starts {:?}", pem.lines().next());
    world_readable(&path);
    path
}

impl Ca {
    /// A new CA named `name` (its CN) with its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = new_key(dir, name, KeyFormat::EcSec1);
        let cert = format!("{name}.pem");
        let ext = dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        let subject = format!("/CN={name}");
        let key_arg = key.to_str().unwrap();
        let csr = format!("{name}.csr");
        openssl(dir, &["req", "-new", "-key", key_arg, "-subj", &subject, "-out", &csr]);
        let ext_arg = ext.to_str().unwrap();
        openssl(
            dir,
            &[
                "x509", "-req", "-in", &csr, "-signkey", key_arg, "-days", "2", "-extfile", ext_arg, "-out",
                &cert,
            ],
        );
        let cert = dir.join(cert);
        world_readable(&cert);
        Ca { dir: dir.to_path_buf(), cert, key }
    }

    /// Signs a certificate for `cn` with a new key in `format`; `extensions`
    /// are openssl extension lines (SANs, key usage).
    pub fn issue(&self, cn: &str, format: KeyFormat, extensions: &str) -> Issued {
        let name = format!("{cn}-{format:?}").to_lowercase();
        let key = new_key(&self.dir, &name, format);
        let csr = format!("{name}.csr");
        let subject = format!("/CN={cn}");
        openssl(&self.dir, &["req", "-new", "-key", key.to_str().unwrap(), "-subj", &subject, "-out", &csr]);
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!("basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid\n{extensions}"),
        )
        .unwrap();
        let cert = format!("{name}.pem");
        let serial = format!("{}", 1000 + SERIAL.fetch_add(1, Ordering::Relaxed));
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                self.cert.to_str().unwrap(),
                "-CAkey",
                self.key.to_str().unwrap(),
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-extfile",
                ext.to_str().unwrap(),
                "-out",
                &cert,
            ],
        );
        let cert = self.dir.join(cert);
        world_readable(&cert);
        Issued { cert, key }
    }

    /// The broker's certificate: valid for 127.0.0.1 and localhost.
    pub fn server(&self) -> Issued {
        self.issue(
            "mosquitto-test",
            KeyFormat::RsaPkcs8,
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
    }

    /// A client certificate for `cn` (mosquitto's username with `use_identity_as_username`).
    pub fn client(&self, cn: &str, format: KeyFormat) -> Issued {
        self.issue(cn, format, "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    }
}

/// mosquitto.conf lines for a TLS listener with `server`'s certificate,
/// trusting client certificates signed by `ca`.
pub fn tls_listener(ca: &Ca, server: &Issued) -> String {
    format!(
        "cafile {}\ncertfile {}\nkeyfile {}\n",
        ca.cert.display(),
        server.cert.display(),
        server.key.display()
    )
}

/// Puts a test client on TLS (rustls, like the box) trusting `ca`.
pub fn over_tls(ca: &Ca, client: Option<&Issued>) -> impl FnOnce(&mut MqttOptions) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let transport = Transport::Tls(TlsConfiguration::Simple {
        ca: read(&ca.cert),
        alpn: None,
        client_auth: client.map(|c| (read(&c.cert), read(&c.key))),
    });
    move |options| {
        options.set_transport(transport);
    }
}
