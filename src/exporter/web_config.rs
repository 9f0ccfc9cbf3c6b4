//! The web configuration file (`--web-config-file`): TLS and basic auth for the HTTP endpoints, in the format
//! that Prometheus and its exporters share (Prometheus' exporter-toolkit), so one file and one habit serve all
//! of a cluster's exporters:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: tls.crt            # relative paths are relative to this file's directory
//!   key_file: tls.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional; needs client_ca_file
//!   client_ca_file: ca.crt
//!   min_version: TLS12            # optional: TLS12 (default) or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...        # bcrypt hash, e.g. `htpasswd -nbBC 10 "" PASSWORD`
//! ```
//!
//! Differences from exporter-toolkit, each because rustls or Kubernetes probes make it so: TLS 1.0/1.1 are
//! refused (rustls does not implement them); `RequestClientCert` and `RequireAnyClientCert` (certificates that
//! are asked for but not verified) are refused; `/healthz` and `/readyz` answer without basic auth so that
//! kubelet probes need no credentials (they reveal nothing). Unknown keys are errors, as in exporter-toolkit.
//!
//! The file and the files it names are re-read when one of them changes (checked at each new connection and
//! each request), so a certificate rotated in a mounted Secret takes effect without a restart; a changed file that no longer loads
//! is logged and the previous configuration stays in force.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

/// Why a web configuration file cannot be used. Every message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file (the web config or one it names) could not be read.
    #[error("{file}: cannot read {what}: {source}")]
    Read {
        /// The file that could not be read.
        file: PathBuf,
        /// Which field named it.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The web config is not valid YAML of the expected shape.
    #[error("{file}: not a web configuration file: {message}")]
    Syntax {
        /// The web config file.
        file: PathBuf,
        /// The parser's message (names the unknown or mistyped field).
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The web config file.
        file: PathBuf,
        /// The field at fault.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
}

/// One loaded configuration: what the server applies to a connection and a request.
#[derive(Clone, Default)]
pub struct Settings {
    /// TLS for every connection, when configured.
    pub tls: Option<TlsAcceptor>,
    /// Basic auth for `/metrics` and `/`, when configured.
    pub auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.auth.as_ref().map_or(0, |a| a.users.len());
        f.debug_struct("Settings").field("tls", &self.tls.is_some()).field("basic_auth_users", &users).finish()
    }
}

/// The web configuration of a running server: the file, its current settings, and what to watch for changes.
/// A connection only reads the settings; [`WebConfig::watch`] stats the files, off the request path.
#[derive(Debug, Default)]
pub struct WebConfig {
    path: Option<PathBuf>,
    settings: RwLock<Settings>,
    files: Mutex<Files>,
}

#[derive(Debug, Default)]
struct Loaded {
    settings: Settings,
    files: Files,
}

/// What the last load read, and when each file was modified then.
#[derive(Debug, Default)]
struct Files {
    watched: Vec<PathBuf>,
    fingerprint: Vec<Option<SystemTime>>,
}

/// How often [`WebConfig::watch`] looks for a changed file: a rotated Secret takes effect within this.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl WebConfig {
    /// No TLS, no auth (no `--web-config-file`).
    pub fn plain() -> WebConfig {
        WebConfig::default()
    }

    /// Loads `path`; any problem is a start-up error naming the file and the field.
    pub fn load(path: &Path) -> Result<WebConfig, Error> {
        let Loaded { settings, files } = load_file(path)?;
        Ok(WebConfig { path: Some(path.to_owned()), settings: RwLock::new(settings), files: Mutex::new(files) })
    }

    /// The settings for a new connection.
    pub fn current(&self) -> Settings {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Re-reads the file if it or a file it names changed since the last load; a file that no longer loads keeps
    /// the previous settings (logged once per change). Blocking: it stats and reads files.
    pub fn refresh(&self) {
        let Some(path) = &self.path else { return };
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if fingerprint(&files.watched) == files.fingerprint {
            return;
        }
        match load_file(path) {
            Ok(loaded) => {
                tracing::info!(file = %path.display(), settings = ?loaded.settings, "web config reloaded");
                *self.settings.write().unwrap_or_else(PoisonError::into_inner) = loaded.settings;
                *files = loaded.files;
            }
            Err(e) => {
                tracing::error!(error = %e, "web config changed but does not load; keeping the previous one");
                files.fingerprint = fingerprint(&files.watched);
            }
        }
    }

    /// Refreshes every [`RELOAD_INTERVAL`] on a blocking thread, for as long as the server runs; returns at once
    /// without a file.
    pub async fn watch(self: Arc<Self>) {
        if self.path.is_none() {
            return;
        }
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.refresh()).await.is_err() {
                tracing::error!("the web config reload panicked");
            }
        }
    }
}

fn fingerprint(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

fn load_file(path: &Path) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_owned(),
        what: "the web configuration file (--web-config-file)",
        source,
    })?;
    // An empty file is a valid configuration with neither TLS nor auth, as in exporter-toolkit.
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        serde_yaml::from_str(&text).map_err(|e| Error::Syntax { file: path.to_owned(), message: e.to_string() })?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut watched = vec![path.to_owned()];
    let tls = match raw.tls_server_config {
        Some(tls) => Some(tls_acceptor(path, dir, tls, &mut watched)?),
        None => None,
    };
    let auth = match raw.basic_auth_users {
        Some(users) => Some(Arc::new(BasicAuth::new(path, users)?)),
        None => None,
    };
    let fingerprint = fingerprint(&watched);
    Ok(Loaded { settings: Settings { tls, auth }, files: Files { watched, fingerprint } })
}

fn field(file: &Path, field: &'static str, message: impl Into<String>) -> Error {
    Error::Field { file: file.to_owned(), field, message: message.into() }
}

/// The TLS versions rustls implements, oldest first; `tls_version` returns an index into it.
static VERSIONS: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS12, &rustls::version::TLS13];

fn tls_version(file: &Path, name: &'static str, value: &str) -> Result<usize, Error> {
    match value {
        "TLS12" => Ok(0),
        "TLS13" => Ok(1),
        "TLS10" | "TLS11" => Err(field(file, name, format!("{value} is not supported (insecure); use TLS12 or TLS13"))),
        other => Err(field(file, name, format!("unknown TLS version {other:?}; use TLS12 or TLS13"))),
    }
}

fn tls_acceptor(file: &Path, dir: &Path, raw: RawTls, watched: &mut Vec<PathBuf>) -> Result<TlsAcceptor, Error> {
    const CERT: &str = "tls_server_config.cert_file";
    const KEY: &str = "tls_server_config.key_file";
    const CA: &str = "tls_server_config.client_ca_file";
    const AUTH: &str = "tls_server_config.client_auth_type";
    let min = tls_version(file, "tls_server_config.min_version", raw.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = tls_version(file, "tls_server_config.max_version", raw.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions = VERSIONS.get(min..=max).unwrap_or_default();
    if versions.is_empty() {
        return Err(field(file, "tls_server_config.min_version", "is above max_version"));
    }
    let cert_path = dir.join(raw.cert_file.ok_or_else(|| field(file, CERT, "missing (the server certificate, PEM)"))?);
    let key_path = dir.join(raw.key_file.ok_or_else(|| field(file, KEY, "missing (the server's private key, PEM)"))?);
    let certs = read_certs(file, CERT, &cert_path)?;
    let key_pem = read_named(file, KEY, &key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| field(file, KEY, format!("{}: no usable PEM private key: {e}", key_path.display())))?;
    watched.extend([cert_path, key_path]);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca = match raw.client_ca_file {
        Some(ca) => {
            let ca_path = dir.join(ca);
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(file, CA, &ca_path)? {
                roots.add(cert).map_err(|e| field(file, CA, format!("{}: {e}", ca_path.display())))?;
            }
            watched.push(ca_path);
            Some(Arc::new(roots))
        }
        None => None,
    };
    let auth_type = raw.client_auth_type.as_deref().unwrap_or(if ca.is_some() {
        "RequireAndVerifyClientCert"
    } else {
        "NoClientCert"
    });
    let verifier = match (auth_type, ca) {
        ("NoClientCert", None) => None,
        ("NoClientCert", Some(_)) => {
            return Err(field(file, AUTH, "client_ca_file is set but client_auth_type is NoClientCert"));
        }
        ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven", None) => {
            return Err(field(file, CA, format!("missing: client_auth_type {auth_type} needs the CA to verify with")));
        }
        ("RequireAndVerifyClientCert", Some(roots)) => {
            Some(WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).build())
        }
        ("VerifyClientCertIfGiven", Some(roots)) => {
            Some(WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).allow_unauthenticated().build())
        }
        ("RequestClientCert" | "RequireAnyClientCert", _) => {
            return Err(field(
                file,
                AUTH,
                format!(
                    "{auth_type} (a certificate asked for but never verified) is not supported; use RequireAndVerifyClientCert with client_ca_file"
                ),
            ));
        }
        (other, _) => {
            return Err(field(
                file,
                AUTH,
                format!(
                    "unknown value {other:?}; use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let verifier = verifier.transpose().map_err(|e| field(file, CA, e.to_string()))?;

    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| field(file, "tls_server_config.min_version", e.to_string()))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| field(file, KEY, format!("does not match cert_file or is unusable: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_named(file: &Path, what: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| field(file, what, format!("cannot read {}: {e}", path.display())))
}

fn read_certs(file: &Path, what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_named(file, what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| field(file, what, format!("{}: not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(field(file, what, format!("{}: holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// Basic auth against bcrypt hashes. A bcrypt check costs tens of milliseconds by design, so successful checks
/// are remembered (as exporter-toolkit does): Prometheus sends the same credentials every scrape. The cache
/// holds SHA-256 digests of user, hash and password, never the password itself.
#[derive(Debug)]
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// What an unknown user's password is checked against: the costliest configured hash.
    decoy: String,
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// Checked for an unknown user when no user is configured. With users, an unknown user is checked against the
/// costliest configured hash instead (a success still refuses): a wrong user name then costs as long as the
/// slowest wrong password, and response times do not tell which user names exist.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl BasicAuth {
    fn new(file: &Path, users: BTreeMap<String, String>) -> Result<BasicAuth, Error> {
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(field(file, "basic_auth_users", format!("user {user:?}: a user name cannot contain ':'")));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                let message = format!(
                    "user {user:?}: not a bcrypt hash (make one with `htpasswd -nbBC 10 \"\" PASSWORD | tr -d ':'`)"
                );
                return Err(field(file, "basic_auth_users", message));
            }
        }
        let cost = |hash: &String| hash.parse::<bcrypt::HashParts>().map_or(0, |parts| parts.get_cost());
        let decoy = users.values().max_by_key(|hash| cost(hash)).cloned().unwrap_or_else(|| DUMMY_HASH.to_owned());
        Ok(BasicAuth { users, decoy, verified: Mutex::new(HashSet::new()) })
    }

    /// Whether an `Authorization` header value carries valid credentials. Runs bcrypt on a blocking thread.
    pub async fn authorize(self: Arc<Self>, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(decode_basic) else { return false };
        let hash = self.users.get(&user).cloned();
        let key = cache_key(&user, hash.as_deref().unwrap_or(""), &password);
        if hash.is_some() && self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return true;
        }
        let this = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(&password, hash.as_deref().unwrap_or(&this.decoy)).unwrap_or(false);
            let ok = ok && hash.is_some();
            if ok {
                this.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
            }
            ok
        });
        checked.await.unwrap_or(false)
    }
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// `Basic base64(user:password)` → (user, password).
fn decode_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "web.yml", text);
        WebConfig::load(&path).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let e = error("basic_auth_users:\n  prom: plaintext\n");
        assert!(e.contains("web.yml: basic_auth_users: user \"prom\": not a bcrypt hash"), "{e}");
        let e = error("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n");
        assert!(e.contains("web.yml: tls_server_config.cert_file: cannot read ") && e.contains("nope.crt"), "{e}");
        let e = error("tls_server_config:\n  key_file: k\n");
        assert!(e.contains("tls_server_config.cert_file: missing"), "{e}");
        let e = error("basic_auth_user:\n  a: b\n");
        assert!(e.contains("web.yml: not a web configuration file: unknown field `basic_auth_user`"), "{e}");
        let e = error("tls_server_config:\n  certfile: x\n");
        assert!(e.contains("unknown field `certfile`"), "{e}");
    }

    #[test]
    fn an_empty_file_means_neither_tls_nor_auth() {
        let dir = tempfile::tempdir().unwrap();
        let config = WebConfig::load(&write(dir.path(), "web.yml", "")).unwrap();
        let settings = config.current();
        assert!(settings.tls.is_none() && settings.auth.is_none());
    }

    #[tokio::test]
    async fn basic_auth_checks_bcrypt_and_caches_successes() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("prom".to_owned(), hash)]);
        let auth = Arc::new(BasicAuth::new(Path::new("web.yml"), users).unwrap());
        let header = |u: &str, p: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        };
        assert!(auth.clone().authorize(Some(header("prom", "s3cret").as_bytes())).await);
        assert_eq!(auth.verified.lock().unwrap().len(), 1, "a success is cached");
        assert!(auth.clone().authorize(Some(header("prom", "s3cret").as_bytes())).await);
        assert!(!auth.clone().authorize(Some(header("prom", "wrong").as_bytes())).await);
        assert!(!auth.clone().authorize(Some(header("other", "s3cret").as_bytes())).await);
        assert!(!auth.clone().authorize(Some(b"Bearer abc")).await);
        assert!(!auth.clone().authorize(None).await);
        assert_eq!(auth.verified.lock().unwrap().len(), 1, "failures are not cached");
    }

    #[test]
    fn the_dummy_hash_is_a_valid_bcrypt_hash() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }

    #[test]
    fn an_unknown_user_costs_the_costliest_configured_hash() {
        let (cheap, dear) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 6).unwrap());
        let users = BTreeMap::from([("x".to_owned(), dear.clone()), ("y".to_owned(), cheap)]);
        assert_eq!(BasicAuth::new(Path::new("web.yml"), users).unwrap().decoy, dear);
        assert_eq!(BasicAuth::new(Path::new("web.yml"), BTreeMap::new()).unwrap().decoy, DUMMY_HASH);
    }

    #[tokio::test]
    async fn an_unknown_user_with_a_known_users_password_is_refused() {
        let users = BTreeMap::from([("prom".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = Arc::new(BasicAuth::new(Path::new("web.yml"), users).unwrap());
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("intruder:s3cret"));
        assert!(!auth.authorize(Some(header.as_bytes())).await);
    }

    #[test]
    fn a_changed_file_is_picked_up_by_refresh_and_a_broken_one_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "web.yml", "");
        let config = WebConfig::load(&path).unwrap();
        let hash = bcrypt::hash("p", 4).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        write(dir.path(), "web.yml", &format!("basic_auth_users:\n  prom: {hash}\n"));
        assert!(config.current().auth.is_none(), "connections read the settings; only refresh re-reads the file");
        config.refresh();
        assert!(config.current().auth.is_some());
        std::thread::sleep(Duration::from_millis(20));
        write(dir.path(), "web.yml", "basic_auth_user: {}\n");
        config.refresh();
        assert!(config.current().auth.is_some(), "a broken file keeps the previous settings");
    }
}
