//! The nginx-rtmp peer: nginx with the rtmp module (and, for rtmps, the
//! stream module in front), started in a temporary prefix and stopped by pid.

use super::{Proc, free_port, pki, wait_for_port};
use std::process::{Command, Stdio};

/// Debian's libnginx-mod-rtmp.
pub const NGINX_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx with the rtmp module on 127.0.0.1:port, application "live";
/// optionally with nginx's `stream {}` module terminating TLS in front of it
/// on `tls_port`, the usual way to give nginx-rtmp an rtmps:// port.
pub struct Nginx {
    _proc: Proc,
    _dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: Option<u16>,
    /// Its HTTP port, serving `GET /stat` (`rtmp_stat all`).
    pub stat_port: u16,
}

/// nginx's stream module (Debian libnginx-mod-stream).
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

impl Nginx {
    pub fn start() -> Nginx {
        Nginx::start_with_tls(None)
    }

    pub fn start_with_tls(tls: Option<&pki::ServerCert>) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let stat_port = free_port();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let (stream_module, stream) = match (tls, tls_port) {
            (Some(cert), Some(tls_port)) => (
                format!("load_module {STREAM_MODULE};\n"),
                format!(
                    "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl;\n\
                       ssl_certificate {c}; ssl_certificate_key {k};\n\
                       proxy_pass 127.0.0.1:{port}; }} }}\n",
                    c = cert.cert.display(),
                    k = cert.key.display(),
                ),
            ),
            _ => (String::new(), String::new()),
        };
        let conf = format!(
            "load_module {NGINX_MODULE};\n{stream_module}\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
               application live {{ live on; record off; }} }} }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{stat_port};\n\
               location /stat {{ rtmp_stat all; }} }} }}\n{stream}",
            d = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        if let Some(p) = tls_port {
            wait_for_port(p);
        }
        Nginx {
            _proc: Proc(child),
            _dir: dir,
            port,
            tls_port,
            stat_port,
        }
    }

    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.port)
    }
}
