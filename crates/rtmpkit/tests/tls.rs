//! RTMPS through the library: a server with a certificate from a CA made
//! here, clients that trust it (or not), and the errors that name why.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rtmpkit::server::ServerOptions;
use rtmpkit::tls::{ServerCertificate, client_config};
use rtmpkit::{ClientOptions, PullSession, PushSession};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A CA, and a certificate for `localhost` it signed: (ca.pem, cert, key).
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn push_over_rtmps_pull_over_plain_same_media() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path());
    let server = start(ServerOptions {
        tls_certificate: Some(ServerCertificate::load(&cert, &key).unwrap()),
        ..ServerOptions::default()
    })
    .await;
    let tls_port = server.tls_addr.unwrap().port();
    let pull = PullSession::connect(
        &format!("rtmp://{}/live/t", server.addr),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let opts = ClientOptions {
        tls: Some(client_config(&[ca]).unwrap()),
        ..ClientOptions::default()
    };
    let push = PushSession::connect(&format!("rtmps://localhost:{tls_port}/live/t"), opts)
        .await
        .expect("publish over rtmps");
    for t in sample_tags() {
        push.write_media(tag_media(&t)).await.unwrap();
    }
    push.close().await.unwrap();
    assert_eq!(media_of(&collect(&pull).await), expected_media());
    server.stop().await;
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, cert, key) = pki(dir.path());
    let server = start(ServerOptions {
        tls_certificate: Some(ServerCertificate::load(&cert, &key).unwrap()),
        ..ServerOptions::default()
    })
    .await;
    let url = format!(
        "rtmps://localhost:{}/live/t",
        server.tls_addr.unwrap().port()
    );
    let opts = ClientOptions {
        timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    };
    let err = PushSession::connect(&url, opts).await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn bad_tls_settings_fail_at_bind_or_load() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path());
    // A key that is not the certificate's.
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_key) = pki(other.path());
    let e = ServerCertificate::load(&cert, &other_key).unwrap_err();
    assert!(
        e.to_string().contains("do not make a usable certificate"),
        "{e}"
    );
    // A certificate file without a certificate.
    let e = ServerCertificate::load(&key, &key).unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    // A TLS listener without a certificate; no listener at all.
    let opts = ServerOptions {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerOptions::default()
    };
    assert!(rtmpkit::server::Server::bind(opts).await.is_err());
    let opts = ServerOptions {
        listen: None,
        ..ServerOptions::default()
    };
    assert!(rtmpkit::server::Server::bind(opts).await.is_err());
    // A reload with a broken file keeps the certificate in use.
    let c = ServerCertificate::load(&cert, &key).unwrap();
    std::fs::write(&cert, "junk").unwrap();
    assert!(c.reload().is_err());
    assert!(client_config(&[ca]).is_ok());
}

#[tokio::test]
async fn a_silent_client_on_the_tls_port_is_closed_by_the_setup_timeout() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (_ca, cert, key) = pki(dir.path());
    let server = start(ServerOptions {
        tls_certificate: Some(ServerCertificate::load(&cert, &key).unwrap()),
        setup_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(server.tls_addr.unwrap())
        .await
        .unwrap();
    let t = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf))
        .await
        .expect("closed before 3 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing but the close");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    server.stop().await;
}
