//! Where Redis is and how a broker uses it. The facade fills a [`RedisEndpoint`] from what
//! the embedder gave: a `redis://`/`rediss://` URL, or the connection options read off an
//! ioredis or node-redis client (host, port, username, password, db, TLS).

use std::time::Duration;

use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion,
    RedisConnectionInfo, TlsCertificates,
};

#[derive(Clone, Debug, Default)]
pub struct RedisTls {
    /// Skip certificate verification (`rejectUnauthorized: false`, `#insecure`).
    pub insecure: bool,
    /// PEM of the certificate authority to trust instead of the system's.
    pub ca_pem: Option<String>,
    /// PEM of a client certificate and its key (mutual TLS).
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RedisEndpoint {
    /// A `redis://` or `rediss://` URL; the fields below override its parts.
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<i64>,
    /// TLS, when the URL is `rediss://` or the client's options ask for it.
    pub tls: Option<RedisTls>,
}

/// How a broker takes part in the shared state.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Prefix of every key and channel.
    pub key_prefix: String,
    /// How long a broker's lease lasts without renewal before others finish its sessions.
    pub lease: Duration,
    /// Event bytes a broker buffers while Redis cannot take them; past it, the sessions that
    /// write more fail with `REDIS_UNAVAILABLE`.
    pub buffer_bytes: usize,
    /// How long a command for another broker's session waits for its answer.
    pub command_timeout: Duration,
}

pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
pub const MIN_LEASE: Duration = Duration::from_millis(500);
pub const DEFAULT_BUFFER_BYTES: usize = 32 << 20;

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            key_prefix: "enclave:".into(),
            lease: DEFAULT_LEASE,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            command_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisEndpoint {
    /// The redis-rs connection (RESP3: one connection carries commands and pub/sub).
    pub fn client(&self) -> Result<redis::Client, String> {
        let base = match &self.url {
            Some(url) => url
                .as_str()
                .into_connection_info()
                .map_err(|e| format!("Invalid Redis URL {}: {e}", redact(url)))?,
            None => ConnectionAddr::Tcp("127.0.0.1".into(), 6379)
                .into_connection_info()
                .map_err(|e| e.to_string())?,
        };
        let (mut host, mut port, url_tls, url_insecure) = match base.addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port, false, false),
            ConnectionAddr::TcpTls { host, port, insecure, .. } => (host.clone(), *port, true, *insecure),
            ConnectionAddr::Unix(path) => {
                return Err(format!("Unix socket Redis addresses are not supported ({})", path.display()));
            }
            _ => return Err("Unsupported Redis address".into()),
        };
        if let Some(h) = &self.host {
            host = h.clone();
        }
        if let Some(p) = self.port {
            port = p;
        }
        let settings = base.redis_settings();
        let mut redis = RedisConnectionInfo::default().set_protocol(ProtocolVersion::RESP3);
        redis = redis.set_db(self.db.unwrap_or(settings.db()));
        if let Some(user) = self.username.as_deref().or(settings.username()) {
            redis = redis.set_username(user);
        }
        if let Some(password) = self.password.as_deref().or(settings.password()) {
            redis = redis.set_password(password);
        }
        let tls = match (&self.tls, url_tls) {
            (Some(tls), _) => Some(tls.clone()),
            (None, true) => Some(RedisTls { insecure: url_insecure, ..RedisTls::default() }),
            (None, false) => None,
        };
        let addr = match &tls {
            None => ConnectionAddr::Tcp(host, port),
            Some(tls) => ConnectionAddr::TcpTls { host, port, insecure: tls.insecure, tls_params: None },
        };
        let info = addr
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(redis)
            .set_tcp_settings(base.tcp_settings().clone().set_nodelay(true));
        match tls {
            Some(RedisTls { ca_pem, cert_pem, key_pem, .. }) if ca_pem.is_some() || cert_pem.is_some() => {
                install_crypto_provider();
                let client_tls = match (cert_pem, key_pem) {
                    (Some(cert), Some(key)) => {
                        Some(ClientTlsConfig { client_cert: cert.into_bytes(), client_key: key.into_bytes() })
                    }
                    (None, None) => None,
                    _ => return Err("A TLS client certificate needs both cert and key".into()),
                };
                let certificates = TlsCertificates { client_tls, root_cert: ca_pem.map(String::into_bytes) };
                redis::Client::build_with_tls(info, certificates).map_err(|e| e.to_string())
            }
            Some(_) => {
                install_crypto_provider();
                redis::Client::open(info).map_err(|e| e.to_string())
            }
            None => redis::Client::open(info).map_err(|e| e.to_string()),
        }
    }
}

/// rustls needs a process-wide crypto provider (an embedder may have installed one). ring's
/// is deprecated only for lacking post-quantum key exchange, which Redis servers do not
/// offer; the alternative, aws-lc-rs, would need cmake and a C build on every platform.
#[allow(deprecated)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `host:port` of a client, as error messages and `/health` name it.
pub fn address(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
        other => other.to_string(),
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> RedisEndpoint {
        RedisEndpoint { url: Some(url.into()), ..RedisEndpoint::default() }
    }

    #[test]
    fn urls_and_client_options_make_one_connection() {
        let client = endpoint("redis://:pw@10.0.0.1:6390/2").client().unwrap();
        let info = client.get_connection_info();
        assert_eq!(address(info), "10.0.0.1:6390");
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("pw"));
        assert_eq!(info.redis_settings().protocol(), ProtocolVersion::RESP3);
        // An ioredis client's options override the URL's parts.
        let options = RedisEndpoint {
            host: Some("cache".into()),
            port: Some(7000),
            db: Some(3),
            username: Some("app".into()),
            ..endpoint("redis://localhost")
        };
        let info = options.client().unwrap().get_connection_info().clone();
        assert_eq!(address(&info), "cache:7000");
        assert_eq!((info.redis_settings().db(), info.redis_settings().username()), (3, Some("app")));
        let tls = endpoint("rediss://secure.example:6380").client().unwrap();
        assert_eq!(address(tls.get_connection_info()), "secure.example:6380 (TLS)");
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        let error = endpoint("http://user:secret@host").client().unwrap_err();
        assert!(error.contains("***@host"), "{error}");
        assert!(!error.contains("secret"));
        assert!(endpoint("redis+unix:///tmp/redis.sock").client().is_err());
    }
}
