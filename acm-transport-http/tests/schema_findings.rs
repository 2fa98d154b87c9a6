//! What schemathesis (`scripts/schemathesis.sh`) found against two live `acm serve`
//! processes, each kept as a test against the real listener.
//!
//! 1. An answer given before the request body is read (no token, a wrong media type, a
//!    method not allowed, no idempotency key) reached an HTTP/1.1 client as a broken
//!    connection ("EOF occurred in violation of protocol"): hyper closed the connection with
//!    the body unread, and the reset that a close with unread data sends made the client's
//!    kernel drop the answer. The server now reads the rest of the body first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use acm_core::{AcmServer, McServiceId, Ports, ServerConfig, StaticDirectory, SystemId};
use acm_store_memory::MemoryAcmStore;
use acm_transport_http::pki::SystemPki;
use acm_transport_http::{
    Api, ApiConfig, HttpsPartnerTransport, HttpsServer, PartnerEndpoint, PartnerTrust, TlsListener,
    TokenIssuer, TokenKeys, TokenPolicy, TokenVerifier, TransportOptions, client_api_client_config,
    client_api_server_config, partner_api_server_config,
};

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// One ACM server of mc-a.example on loopback, its partner configured but not running.
struct One {
    https: HttpsServer,
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

impl One {
    async fn start() -> Self {
        let a: SystemId = id("mc-a.example");
        let b: SystemId = id("mc-b.example");
        let alice: McServiceId = id("sip:alice@mc-a.example");
        let pki_a = SystemPki::generate(&a).unwrap_or_else(|e| panic!("{e}"));
        let pki_b = SystemPki::generate(&b).unwrap_or_else(|e| panic!("{e}"));
        let directory = StaticDirectory::new(a.clone())
            .with_partner(b.clone(), vec![b.clone()])
            .with_user(alice.clone(), false)
            .with_provider(alice.clone(), b.clone());
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"));
        let transport = HttpsPartnerTransport::new(
            &pki_a.identity(),
            vec![PartnerEndpoint {
                system: b.clone(),
                base_url: format!("https://localhost:{}", closed.port()),
                ca_pem: pki_b.ca_pem().into_bytes(),
            }],
            TransportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ports = Ports::builder(Arc::new(directory), Arc::new(transport)).build();
        let server = Arc::new(
            AcmServer::open(
                ServerConfig::new(a.clone()),
                ports,
                Arc::new(MemoryAcmStore::new()),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let (private, public) =
            acm_transport_http::pki::token_keypair().unwrap_or_else(|e| panic!("{e}"));
        let verifier = TokenVerifier::new(
            TokenPolicy::new("https://idms.mc-a.example", "acm.mc-a.example"),
            TokenKeys::from_pem(public.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let token = TokenIssuer::from_pem(
            private.as_bytes(),
            jsonwebtoken::Algorithm::ES256,
            "https://idms.mc-a.example",
            "acm.mc-a.example",
            "mcptt_id",
        )
        .and_then(|issuer| issuer.issue(&alice, Duration::from_mins(10)))
        .unwrap_or_else(|e| panic!("{e}"));
        let trust = Arc::new(
            PartnerTrust::new()
                .with_partner(b, pki_b.ca_pem().as_bytes())
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let api = Api::new(
            server,
            Arc::new(verifier),
            trust.clone(),
            ApiConfig::default(),
        );
        let identity = pki_a.identity();
        let listen =
            |tls| TlsListener::bind(id("127.0.0.1:0"), tls).unwrap_or_else(|e| panic!("{e}"));
        let https = HttpsServer::start(
            api,
            listen(client_api_server_config(&identity).unwrap_or_else(|e| panic!("{e}"))),
            listen(partner_api_server_config(&identity, trust).unwrap_or_else(|e| panic!("{e}"))),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut tls =
            client_api_client_config(pki_a.ca_pem().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        // HTTP/1.1, as schemathesis (Python requests) speaks it.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            https,
            tls: Arc::new(tls),
            token,
        }
    }
}

/// An HTTP/1.1 connection over TLS, written and read the way a simple client does: the whole
/// request first, then the answer.
struct Connection(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

/// What an answer said: its status, its headers (names in lower case) and its body.
type Answer = (u16, Vec<(String, String)>, String);

impl Connection {
    fn open(port: u16, tls: &Arc<rustls::ClientConfig>) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
        // A bound, so a server that never answers fails the test instead of hanging it.
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("{e}"));
        tcp.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("{e}"));
        let name =
            rustls::pki_types::ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
        let client =
            rustls::ClientConnection::new(tls.clone(), name).unwrap_or_else(|e| panic!("{e}"));
        Self(rustls::StreamOwned::new(client, tcp))
    }

    /// Sends one request and reads its answer; `Err` is what the client saw instead.
    fn call(&mut self, head: &str, body: &[u8]) -> Result<Answer, String> {
        let mut request = format!(
            "{head}\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.0
            .write_all(&request)
            .and_then(|()| self.0.flush())
            .map_err(|e| format!("sending: {e}"))?;
        let mut reader = BufReader::new(&mut self.0);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the status line: {e}"))?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line: {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("reading headers: {e}"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Larger than hyper reads with the head of a request, smaller than what the server reads
/// after an early answer.
const BODY: usize = 256 * 1024;

/// Each case is tried this often, on a new connection each time: without the fix most tries
/// lost the answer, so all of them passing is no accident.
const TRIES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_body_is_read_reaches_an_http1_client() {
    let one = One::start().await;
    let port = one.https.client_addr().port();
    let tls = one.tls.clone();
    let token = one.token.clone();
    let body: Vec<u8> = [b"{\"items\":[".as_slice(), &vec![b' '; BODY], b"]}"].concat();
    let ack = "/acm/v1/pending-acm-data/acknowledgement";
    let submit = "/acm/v1/interconnection-group-identity-provision/requests";
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("POST {ack} HTTP/1.1\r\nContent-Type: application/json"),
            401,
            "token_missing",
        ),
        (
            format!(
                "POST {ack} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain"
            ),
            415,
            "unsupported_media_type",
        ),
        (
            format!(
                "PUT {ack} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json"
            ),
            405,
            "method_not_allowed",
        ),
        (
            format!(
                "POST {submit} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json"
            ),
            400,
            "idempotency_key_missing",
        ),
    ];
    let outcomes = tokio::task::spawn_blocking(move || {
        let mut outcomes = Vec::new();
        for (head, status, code) in &cases {
            for _ in 0..TRIES {
                let mut connection = Connection::open(port, &tls);
                let answer = connection.call(head, &body);
                // The connection stays usable: the body was read to its end.
                let next = connection.call("GET /healthz HTTP/1.1", b"");
                outcomes.push((head.clone(), *status, *code, answer, next));
            }
        }
        outcomes
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for (head, status, code, answer, next) in outcomes {
        let first_line = head.lines().next().unwrap_or_default().to_owned();
        let (got, headers, text) = answer.unwrap_or_else(|e| panic!("{first_line}: {e}"));
        assert_eq!(got, status, "{first_line}: {text}");
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/problem+json"),
            "{first_line}: {headers:?}"
        );
        assert!(
            text.contains(&format!("\"urn:acm:problem:{code}\"")),
            "{first_line}: {text}"
        );
        let (next_status, _, next_text) =
            next.unwrap_or_else(|e| panic!("{first_line}, then GET /healthz: {e}"));
        assert_eq!(
            (next_status, next_text.as_str()),
            (200, "ok"),
            "{first_line}"
        );
    }
    one.https.shutdown(Duration::from_secs(1)).await;
}
