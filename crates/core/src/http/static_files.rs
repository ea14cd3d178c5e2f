//! Static files of a folder, served under one path (`EnclaveBroker({ playground: true })`
//! serves the packaged playground page at `/playground/`). The files are read once when the
//! server starts and only those names are served, so no request path can reach the disk.
//! Every response carries a strict Content-Security-Policy: scripts, styles and fetches
//! from this origin only, no inline code, no `eval`, and DOM sinks need Trusted Types.
//! The files are public: they are answered before authentication and rate limiting, as
//! `/health` is, since a browser cannot send credentials when it loads a page.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::HeaderValue;
use hyper::{Method, Response, StatusCode};

use super::response::{Body, error};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

struct StaticFile {
    content_type: &'static str,
    bytes: Bytes,
}

pub struct StaticFiles {
    /// Where the folder is served, without a trailing slash (`/playground`).
    mount: String,
    files: HashMap<String, StaticFile>,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl StaticFiles {
    /// Reads the regular files directly in `dir` (not its sub-folders) to serve under `mount`
    /// (`/name`); `index.html` answers the folder itself.
    pub fn load(dir: &Path, mount: &str) -> io::Result<StaticFiles> {
        let mount = mount.trim_end_matches('/');
        if !mount.starts_with('/') || mount.len() < 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the static files' mount must be a path like /name, got {mount:?}"),
            ));
        }
        let mut files = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else { continue };
            let bytes = Bytes::from(std::fs::read(entry.path())?);
            files.insert(name.clone(), StaticFile { content_type: content_type(&name), bytes });
        }
        if !files.contains_key("index.html") {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no index.html", dir.display()),
            ));
        }
        Ok(StaticFiles { mount: mount.to_string(), files })
    }

    /// The response for `path` when it is one of these files (or a redirect to them);
    /// `None` lets the API routes answer.
    pub fn respond(&self, method: &Method, path: &str) -> Option<Response<Body>> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if path == "/" || path == self.mount {
            return Some(redirect(&format!("{}/", self.mount)));
        }
        let name = path.strip_prefix(self.mount.as_str())?.strip_prefix('/')?;
        let name = if name.is_empty() { "index.html" } else { name };
        let mut response = match self.files.get(name) {
            None => error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("Route not found: {method} {path}")),
            Some(file) => {
                let body = if method == Method::HEAD {
                    Empty::new().boxed()
                } else {
                    Full::new(file.bytes.clone()).boxed()
                };
                let mut response = Response::new(body);
                let headers = response.headers_mut();
                headers.insert("content-type", HeaderValue::from_static(file.content_type));
                headers.insert("content-length", HeaderValue::from(file.bytes.len()));
                response
            }
        };
        secure(&mut response);
        Some(response)
    }
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(Empty::new().boxed());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert("location", value);
    }
    secure(&mut response);
    response
}

fn secure(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    // The files are read once at start; a browser still checks back, so a new server
    // process is seen at the next load.
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (std::path::PathBuf, StaticFiles) {
        let dir = std::env::temp_dir().join(format!("enclave-static-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").unwrap();
        std::fs::write(dir.join("app.js"), "export {};").unwrap();
        std::fs::write(dir.join("nested").join("secret.txt"), "no").unwrap();
        let files = StaticFiles::load(&dir, "/playground/").unwrap();
        (dir, files)
    }

    async fn text(response: Response<Body>) -> String {
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn serves_the_folder_under_its_mount_with_a_strict_policy() {
        let (dir, files) = site();
        let index = files.respond(&Method::GET, "/playground/").unwrap();
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(index.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(index.headers()["x-content-type-options"], "nosniff");
        assert_eq!(text(index).await, "<!doctype html><title>t</title>");

        let script = files.respond(&Method::GET, "/playground/app.js").unwrap();
        assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(script.headers()["content-length"], "10");
        let head = files.respond(&Method::HEAD, "/playground/app.js").unwrap();
        assert_eq!(head.headers()["content-length"], "10");
        assert_eq!(text(head).await, "");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn redirects_to_the_folder_and_leaves_other_paths_to_the_api() {
        let (dir, files) = site();
        for path in ["/", "/playground"] {
            let response = files.respond(&Method::GET, path).unwrap();
            assert_eq!(response.status(), StatusCode::FOUND);
            assert_eq!(response.headers()["location"], "/playground/");
        }
        assert!(files.respond(&Method::GET, "/health").is_none());
        assert!(files.respond(&Method::GET, "/playgroundx").is_none());
        assert!(files.respond(&Method::POST, "/playground/").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn only_the_files_read_at_start_exist() {
        let (dir, files) = site();
        for path in [
            "/playground/nested/secret.txt",
            "/playground/../Cargo.toml",
            "/playground/%2e%2e/Cargo.toml",
            "/playground/missing.js",
        ] {
            let response = files.respond(&Method::GET, path).unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(response.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert!(text(response).await.contains("\"code\":\"NOT_FOUND\""));
        }
        std::fs::write(dir.join("later.js"), "1").unwrap();
        assert_eq!(
            files.respond(&Method::GET, "/playground/later.js").unwrap().status(),
            StatusCode::NOT_FOUND
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_folder_without_an_index_or_a_bad_mount() {
        let dir = std::env::temp_dir().join(format!("enclave-static-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(StaticFiles::load(&dir, "/p").err().unwrap().kind(), io::ErrorKind::NotFound);
        std::fs::write(dir.join("index.html"), "x").unwrap();
        assert_eq!(StaticFiles::load(&dir, "/").err().unwrap().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(StaticFiles::load(&dir, "p").err().unwrap().kind(), io::ErrorKind::InvalidInput);
        assert!(StaticFiles::load(&dir.join("absent"), "/p").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
