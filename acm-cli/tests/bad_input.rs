//! The bad-input suite: malformed, forged, over-long, look-alike and out-of-turn inputs sent
//! to two real `acm serve` processes on SQLite, through the client API (bearer tokens) and
//! the partner API (mutual TLS, with the other system's certificate from the harness).
//!
//! Every refused input must get the status and problem type that docs/http.md lists for it
//! (the table is read from the file, so an undocumented type fails), and neither store may
//! record anything for it: both stores' event counts are read after every input. Each test
//! starts with a good input whose events are counted, so the check is seen to move. The
//! refusals that acm records by design (step 2 at A, step 4a at B) are checked for exactly
//! the events they record. docs/reliability.md ("Bad input") lists every input and its
//! answer.
// A table of cases reads best as one function per API.
#![allow(clippy::too_many_lines)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use acm_core::{Envelope, Event};
use acm_transport_http::TlsIdentity;
use acm_transport_http::wire::{client_routes, partner_routes};
use base64::Engine as _;
use common::{A, ALICE, B, BOB, PATIENCE, POLL, Server, Systems, Tweaks, within};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// A user of A who may not provide to anyone (no `provides_to`).
const DAVE: &str = "sip:dave@mc-a.example";
/// A second user of B, who may receive: not a recipient of requests to bob.
const CAROL: &str = "sip:carol@mc-b.example";
/// A user of B who may not receive ACM requests.
const ERIN: &str = "sip:erin@mc-b.example";
/// A functional alias of B that carol holds and bob does not.
const DUTY: &str = "sip:duty@mc-b.example";
/// A system that is nobody's partner.
const X: &str = "mc-x.example";
/// How long a body may take to arrive at either server in this suite.
const BODY_TIMEOUT_MS: u64 = 1000;

/// The two systems with the users above, and a short body time-out so the slow bodies are
/// cut off soon.
async fn start() -> Systems {
    let limits = format!("\n[limits]\nbody_timeout_ms = {BODY_TIMEOUT_MS}\n");
    let a = Tweaks {
        extra: format!("\n[[users]]\nid = \"{DAVE}\"\n{limits}"),
        ..Tweaks::default()
    };
    let b = Tweaks {
        extra: format!(
            "\n[[users]]\nid = \"{CAROL}\"\n\n[[users]]\nid = \"{ERIN}\"\nmay_receive = false\n\n\
             [[functional_aliases]]\nalias = \"{DUTY}\"\nholders = [\"{CAROL}\"]\n{limits}"
        ),
        ..Tweaks::default()
    };
    Systems::start_with(&a, &b).await
}

/// Which server a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    A,
    B,
}

/// docs/http.md's problem table: code → status.
fn documented_problems() -> HashMap<String, u16> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let table: HashMap<String, u16> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(2)?.parse().ok()?;
            Some((code.to_owned(), status))
        })
        .collect();
    assert!(table.len() > 40, "docs/http.md's problem table not found");
    table
}

/// A fresh UUID v7, the form of every request and message id.
fn v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A step-3 message from A to B in the wire form of `ForwardedRequest`.
fn forwarded(message_id: &str, request_id: &str, requester: &str, groups: &[&str]) -> Value {
    json!({
        "message_id": message_id,
        "request": {
            "request_id": request_id,
            "requester": requester,
            "requester_alias": null,
            "partner": B,
            "target": {"kind": "user", "id": BOB},
            "body": {"kind": "interconnection_group_identity_provision", "groups": groups},
        },
    })
}

/// A step-10 message in the wire form of `ForwardedResponse`: `responder` (a user) accepts,
/// or rejects with `reason`.
fn answer_of(message_id: &str, request_id: &str, responder: &str, reason: Option<&str>) -> Value {
    let outcome = match reason {
        None => json!({"result": "accepted"}),
        Some(text) => json!({"result": "rejected", "reason": {"by": "user", "text": text}}),
    };
    json!({
        "message_id": message_id,
        "request_id": request_id,
        "response": {
            "responder": {"kind": "user", "id": responder, "alias": null},
            "outcome": outcome,
        },
    })
}

/// A client submission of `groups` to bob at B.
fn submission(groups: &[&str]) -> Value {
    json!({
        "partner": B,
        "target": {"kind": "user", "id": BOB},
        "groups": groups,
    })
}

/// `value` with the member at JSON pointer `at` set to `new` (added when missing).
fn with(mut value: Value, at: &str, new: Value) -> Value {
    let (parent, name) = at.rsplit_once('/').unwrap_or(("", at));
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(name.to_owned(), new);
        }
        other => panic!("no object at {parent}: {other:?}"),
    }
    value
}

/// `value` without the member at JSON pointer `at`.
fn without(mut value: Value, at: &str) -> Value {
    let (parent, name) = at.rsplit_once('/').unwrap_or(("", at));
    if let Some(Value::Object(map)) = value.pointer_mut(parent) {
        map.remove(name);
    }
    value
}

/// `n` distinct group IDs homed at A.
fn groups(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sip:g{i}@{A}")).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A 256-byte SIP URI at `host`: one byte over the longest identifier.
fn too_long(host: &str) -> String {
    let user = "u".repeat(acm_core::MAX_ID_LEN + 1 - "sip:@".len() - host.len());
    format!("sip:{user}@{host}")
}

/// A leaf certificate for `name` signed by the CA key `acm gen-certs` wrote in `ca_dir`
/// (the CA of system `ca_of`, whose subject rcgen needs to name the issuer).
fn leaf_signed_by(ca_dir: &std::path::Path, ca_of: &str, name: &str) -> TlsIdentity {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
    let key_pem = String::from_utf8_lossy(&common::read(&ca_dir.join("ca-key.pem"))).into_owned();
    let ca_key = KeyPair::from_pem(&key_pem).unwrap_or_else(|e| panic!("CA key: {e}"));
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("acm test CA of {ca_of}"));
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()])
        .unwrap_or_else(|e| panic!("leaf parameters: {e}"));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap_or_else(|e| panic!("leaf key: {e}"));
    let cert = leaf
        .signed_by(&key, &issuer)
        .unwrap_or_else(|e| panic!("leaf for {name}: {e}"));
    TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .unwrap_or_else(|e| panic!("identity of {name}: {e}"))
}

/// The two servers, an HTTP client for each API, what the stores held after the last
/// input, and docs/http.md's problem table.
struct Bench {
    systems: Systems,
    /// To A's and B's client APIs.
    to_a: reqwest::Client,
    to_b: reqwest::Client,
    /// With A's certificate to B's partner API, and with B's to A's.
    a_to_b: reqwest::Client,
    b_to_a: reqwest::Client,
    /// The event counts of A's and B's stores after the last input.
    seen: [usize; 2],
    documented: HashMap<String, u16>,
    /// The inputs tried, by name: each is tried once.
    inputs: Vec<String>,
}

impl Bench {
    async fn start() -> Self {
        let systems = start().await;
        let client = |server: &Server| {
            common::https(
                acm_transport_http::client_api_client_config(server.ca_pem())
                    .unwrap_or_else(|e| panic!("client TLS: {e}")),
            )
        };
        let to_a = client(&systems.a);
        let to_b = client(&systems.b);
        let a_to_b = common::https(Self::partner_tls(&systems, At::B, &Self::own(&systems, A)));
        let b_to_a = common::https(Self::partner_tls(&systems, At::A, &Self::own(&systems, B)));
        let mut bench = Self {
            systems,
            to_a,
            to_b,
            a_to_b,
            b_to_a,
            seen: [0, 0],
            documented: documented_problems(),
            inputs: Vec::new(),
        };
        bench.seen = bench.counts();
        bench
    }

    /// The certificate and key `acm gen-certs` wrote for `system`.
    fn own(systems: &Systems, system: &str) -> TlsIdentity {
        let dir = systems.certs(system);
        TlsIdentity::from_files(dir.join("cert.pem"), dir.join("key.pem"))
            .unwrap_or_else(|e| panic!("identity of {system}: {e}"))
    }

    /// Client TLS to the partner API of `to`, presenting `identity`.
    fn partner_tls(systems: &Systems, to: At, identity: &TlsIdentity) -> rustls::ClientConfig {
        let (system, server) = match to {
            At::A => (A, &systems.a),
            At::B => (B, &systems.b),
        };
        acm_transport_http::partner_client_config(
            identity,
            &common::system(system),
            server.ca_pem(),
        )
        .unwrap_or_else(|e| panic!("partner TLS to {system}: {e}"))
    }

    fn server(&self, at: At) -> &Server {
        match at {
            At::A => &self.systems.a,
            At::B => &self.systems.b,
        }
    }

    /// A call to the client API of `at` without a token.
    fn anonymous(&self, at: At, method: Method, path: &str) -> RequestBuilder {
        let http = match at {
            At::A => &self.to_a,
            At::B => &self.to_b,
        };
        http.request(method, format!("{}{path}", self.server(at).client_url()))
    }

    /// A call of `user` (a token of `at`'s identity management server) to `at`'s client API.
    fn call(&self, at: At, user: &str, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(at, method, path)
            .bearer_auth(self.server(at).token(user))
    }

    /// `user`'s submission at A with `key`.
    fn submit(&self, user: &str, key: &str) -> RequestBuilder {
        self.call(At::A, user, Method::POST, client_routes::PROVISION_REQUESTS)
            .header(acm_transport_http::wire::IDEMPOTENCY_KEY, key)
    }

    /// `path` of a request, with `{request_id}` filled in.
    fn of(path: &str, request_id: &str) -> String {
        path.replace("{request_id}", request_id)
    }

    /// A POST to `to`'s partner API from the other system's certificate.
    fn partner(&self, to: At, path: &str) -> RequestBuilder {
        let http = match to {
            At::A => &self.b_to_a,
            At::B => &self.a_to_b,
        };
        http.post(format!("{}{path}", self.server(to).partner_url()))
    }

    /// Notes that input `what` is tried; each input of a test is another.
    fn tried(&mut self, what: &str) {
        assert!(
            !self.inputs.iter().any(|w| w == what),
            "{what} is tried twice"
        );
        self.inputs.push(what.to_owned());
    }

    /// The event counts of A's and B's stores now.
    fn counts(&self) -> [usize; 2] {
        [self.systems.a.events().len(), self.systems.b.events().len()]
    }

    /// Neither store has recorded anything since the last input.
    fn unchanged(&self, what: &str) {
        assert_eq!(self.counts(), self.seen, "{what}: recorded [A, B]");
    }

    /// Checks that `answer` is the problem `code` with `status`, as docs/http.md lists it;
    /// its body.
    async fn problem(
        &self,
        what: &str,
        answer: reqwest::Response,
        status: u16,
        code: &str,
    ) -> Value {
        let got = answer.status().as_u16();
        let headers = answer.headers().clone();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(got, status, "{what}: answered {got} {text}");
        let media = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(media, Some("application/problem+json"), "{what}");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        assert_eq!(
            body["type"],
            format!("urn:acm:problem:{code}"),
            "{what}: {text}"
        );
        assert_eq!(body["status"], status, "{what}: {text}");
        assert_eq!(
            self.documented.get(code),
            Some(&status),
            "{what}: {code} ({status}) is not in docs/http.md"
        );
        if status == 401 {
            assert!(
                headers.contains_key(reqwest::header::WWW_AUTHENTICATE),
                "{what}"
            );
        }
        body
    }

    /// Sends `call`, expects the problem `code` with `status`, and that neither store
    /// recorded anything; the problem.
    async fn refused(
        &mut self,
        what: &str,
        call: RequestBuilder,
        status: u16,
        code: &str,
    ) -> Value {
        self.tried(what);
        let answer = call
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let body = self.problem(what, answer, status, code).await;
        self.unchanged(what);
        body
    }

    /// Sends `call` and expects `status` (a success); its body, or `Null` when empty.
    async fn answered(&self, what: &str, call: RequestBuilder, status: u16) -> Value {
        let answer = call
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let got = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(got, status, "{what}: answered {got} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sends `call`, which must succeed with `status` and record nothing (an accepted
    /// input that must leave both stores as they were); its body.
    async fn harmless(&mut self, what: &str, call: RequestBuilder, status: u16) -> Value {
        self.tried(what);
        let body = self.answered(what, call, status).await;
        self.unchanged(what);
        body
    }

    /// Waits until A has recorded `on_a` and B `on_b` since the last input (in any order:
    /// the relay and the hooks are separate duties), and checks that this is all they
    /// recorded; the new events of each.
    async fn recorded(
        &mut self,
        what: &str,
        on_a: &[&str],
        on_b: &[&str],
    ) -> [Vec<Envelope<Event>>; 2] {
        let want = [self.seen[0] + on_a.len(), self.seen[1] + on_b.len()];
        let events = within(&format!("{what}: {on_a:?} at A and {on_b:?} at B"), async {
            loop {
                let events = [self.systems.a.events(), self.systems.b.events()];
                if events[0].len() >= want[0] && events[1].len() >= want[1] {
                    return events;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        let new = |i: usize| events[i][self.seen[i]..].to_vec();
        let new = [new(0), new(1)];
        for (i, expected) in [on_a, on_b].into_iter().enumerate() {
            let mut got = common::types(&new[i]);
            got.sort();
            let mut expected: Vec<String> = expected.iter().map(|&t| t.to_owned()).collect();
            expected.sort();
            assert_eq!(got, expected, "{what}: recorded at {}", ["A", "B"][i]);
        }
        self.seen = [events[0].len(), events[1].len()];
        new
    }

    /// A refusal that is recorded by design: `call` answers `status` and `code`, and the
    /// stores record exactly `on_a` and `on_b`; the problem and the new events.
    async fn refused_and_recorded(
        &mut self,
        what: &str,
        call: RequestBuilder,
        (status, code): (u16, &str),
        on_a: &[&str],
        on_b: &[&str],
    ) -> (Value, [Vec<Envelope<Event>>; 2]) {
        self.tried(what);
        let answer = call
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let body = self.problem(what, answer, status, code).await;
        let events = self.recorded(what, on_a, on_b).await;
        (body, events)
    }

    /// An input that is accepted with `status` and then refused in the procedure, recorded
    /// by design: the stores record exactly `on_a` and `on_b`.
    async fn accepted_and_recorded(
        &mut self,
        what: &str,
        call: RequestBuilder,
        status: u16,
        on_a: &[&str],
        on_b: &[&str],
    ) -> (Value, [Vec<Envelope<Event>>; 2]) {
        self.tried(what);
        let body = self.answered(what, call, status).await;
        let events = self.recorded(what, on_a, on_b).await;
        (body, events)
    }

    /// The request ids of `user`'s pending items at `at`.
    async fn pending_ids(&self, at: At, user: &str) -> Vec<String> {
        let pending = self
            .answered(
                &format!("{user}'s download"),
                self.call(at, user, Method::GET, client_routes::PENDING),
                200,
            )
            .await;
        pending["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{user}'s download lists no items: {pending}"))
            .iter()
            .map(|item| {
                item["request"]["request_id"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    /// A connection to `url` with `tls` must fail (at the TLS handshake), and record nothing.
    async fn handshake_refused(
        &mut self,
        what: &str,
        tls: rustls::ClientConfig,
        url: &str,
        body: &Value,
    ) {
        self.tried(what);
        match common::https(tls).post(url).json(body).send().await {
            Err(e) => assert!(!e.is_timeout(), "{what}: timed out instead of refused: {e}"),
            Ok(answer) => panic!("{what}: answered {}", answer.status()),
        }
        self.unchanged(what);
    }

    /// A POST to `path` on the `at` server's listener `port` whose body promises 100 bytes
    /// and stops after 11: it must be answered `body_timeout` and record nothing.
    async fn stalled(
        &mut self,
        what: &str,
        port: u16,
        tls: rustls::ClientConfig,
        path: &str,
        headers: Vec<(&'static str, String)>,
    ) {
        self.tried(what);
        let path = path.to_owned();
        let (status, media, body) =
            tokio::task::spawn_blocking(move || stalled_post(port, tls, &path, &headers))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 408, "{what}: {body}");
        assert_eq!(media.as_deref(), Some("application/problem+json"), "{what}");
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(body["type"], "urn:acm:problem:body_timeout", "{what}");
        assert_eq!(self.documented.get("body_timeout"), Some(&408));
        self.unchanged(what);
    }
}

/// `acm_relay_sends_total{outcome}` of `server`.
async fn relay_sends(server: &Server, outcome: &str) -> usize {
    let series = format!("acm_relay_sends_total{{outcome=\"{outcome}\"}} ");
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the head of a POST over HTTP/1.1 and 11 of the 100 body bytes it announces, then
/// waits for the answer (blocking, bounded by [`PATIENCE`]); its status, media type and body.
fn stalled_post(
    port: u16,
    mut tls: rustls::ClientConfig,
    path: &str,
    headers: &[(&'static str, String)],
) -> (u16, Option<String>, String) {
    use std::fmt::Write as _;
    use std::io::{Read as _, Write as _};
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_owned();
    let connection =
        rustls::ClientConnection::new(Arc::new(tls), name).unwrap_or_else(|e| panic!("TLS: {e}"));
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    tcp.set_read_timeout(Some(PATIENCE))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n"
    );
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n{\"message\":");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .unwrap_or_else(|e| panic!("writing the head: {e}"));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        match stream.read(&mut buf) {
            Ok(0) => break parse_answer(&got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(answer) = parse_answer(&got) {
                    break Some(answer);
                }
            }
            // The server may close without close_notify once it has answered.
            Err(_) if !got.is_empty() => break parse_answer(&got),
            Err(e) => panic!("no answer to the stalled body: {e}"),
        }
    };
    answer.unwrap_or_else(|| panic!("not an HTTP answer: {}", String::from_utf8_lossy(&got)))
}

/// A complete HTTP/1.1 answer with a `content-length` in `bytes`, if there is one yet.
fn parse_answer(bytes: &[u8]) -> Option<(u16, Option<String>, String)> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    (body.len() >= length).then(|| (status, header("content-type"), body[..length].to_owned()))
}

/// A's client API: bodies that are not JSON, not the schema or too big; group lists that are
/// empty, repeated or too long; identifiers that are invalid, over-long or look like others;
/// headers and paths that are wrong. None is recorded, at A or at B.
#[tokio::test]
async fn client_api_refuses_malformed_calls() {
    let mut bench = Bench::start().await;
    let good = submission(&[&format!("sip:tac-1@{A}")]);

    // The control: a good submission moves both counts (A queues it, B stores it).
    let queued = bench
        .answered("control", bench.submit(ALICE, "control").json(&good), 202)
        .await;
    assert_eq!(queued["status"], "queued");
    bench
        .recorded(
            "control",
            &["submitted", "authorized", "forwarded", "partner_stored"],
            &["stored", "verified"],
        )
        .await;

    let json = "application/json";
    let raw = |bench: &Bench, key: &str, body: Vec<u8>| {
        bench
            .submit(ALICE, key)
            .header(reqwest::header::CONTENT_TYPE, json)
            .body(body)
    };
    let mut nested = "[".repeat(20_000);
    nested.push_str(&"]".repeat(20_000));
    let bodies: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"partner\": ".to_vec(), 400, "malformed_json"),
        ("an empty body", Vec::new(), 400, "malformed_json"),
        (
            "JSON with trailing bytes",
            format!("{good} trailing").into_bytes(),
            400,
            "malformed_json",
        ),
        (
            "a body that is not UTF-8",
            b"{\"partner\": \"mc-b.\xff\xfeexample\"}".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "20,000 nested arrays",
            nested.into_bytes(),
            422,
            "invalid_body",
        ),
        (
            "a member given twice",
            br#"{"partner": "mc-b.example", "partner": "mc-x.example", "target": {"kind": "user", "id": "sip:bob@mc-b.example"}, "groups": ["sip:tac-1@mc-a.example"]}"#.to_vec(),
            422,
            "invalid_body",
        ),
    ];
    for (i, (what, body, status, code)) in bodies.into_iter().enumerate() {
        let call = raw(&bench, &format!("raw-{i}"), body);
        bench.refused(what, call, status, code).await;
    }

    let long_group = too_long(A);
    let many = groups(65);
    let flood = groups(10_000);
    let submissions: Vec<(&str, Value, u16, &str)> = vec![
        ("a JSON array", json!([good.clone()]), 422, "invalid_body"),
        (
            "a number for the partner",
            with(good.clone(), "/partner", json!(7)),
            422,
            "invalid_body",
        ),
        (
            "a string for the group list",
            with(good.clone(), "/groups", json!("sip:tac-1@mc-a.example")),
            422,
            "invalid_body",
        ),
        (
            "null for the target",
            with(good.clone(), "/target", Value::Null),
            422,
            "invalid_body",
        ),
        (
            "no group list",
            without(good.clone(), "/groups"),
            422,
            "invalid_body",
        ),
        (
            "an unknown member naming a sender system",
            with(good.clone(), "/sender", json!(X)),
            422,
            "invalid_body",
        ),
        (
            "an unknown member in the target",
            with(good.clone(), "/target/system", json!(B)),
            422,
            "invalid_body",
        ),
        (
            "an unknown target kind",
            with(good.clone(), "/target/kind", json!("group")),
            422,
            "invalid_body",
        ),
        (
            "an empty group list",
            submission(&[]),
            422,
            "empty_group_list",
        ),
        (
            "a group twice",
            submission(&["sip:tac-1@mc-a.example", "sip:tac-1@mc-a.example"]),
            422,
            "duplicate_group",
        ),
        (
            "a group twice, once with an escaped hyphen",
            submission(&["sip:tac-1@mc-a.example", "sip:tac%2d1@mc-a.example"]),
            422,
            "duplicate_group",
        ),
        (
            "a group twice, once with an upper-case host",
            submission(&["sip:tac-1@mc-a.example", "sip:tac-1@MC-A.example"]),
            422,
            "duplicate_group",
        ),
        (
            "65 groups (one over max_groups)",
            submission(&strs(&many)),
            422,
            "too_many_groups",
        ),
        (
            "10,000 groups",
            submission(&strs(&flood)),
            413,
            "body_too_large",
        ),
        (
            "a 70 KiB partner name",
            with(good.clone(), "/partner", json!("x".repeat(70 * 1024))),
            413,
            "body_too_large",
        ),
        (
            "a group that is not a SIP URI",
            submission(&["tac-1"]),
            422,
            "invalid_body",
        ),
        (
            "a group with no user part",
            submission(&["sip:@mc-a.example"]),
            422,
            "invalid_body",
        ),
        (
            "a group with a space",
            submission(&["sip:tac 1@mc-a.example"]),
            422,
            "invalid_body",
        ),
        (
            "a group with an escaped NUL",
            submission(&["sip:tac%001@mc-a.example"]),
            422,
            "invalid_body",
        ),
        (
            "a 256-byte group ID",
            submission(&[&long_group]),
            422,
            "invalid_body",
        ),
        (
            "a group whose host has a Cyrillic a (look-alike)",
            submission(&["sip:tac-1@mc-\u{430}.example"]),
            422,
            "invalid_body",
        ),
        (
            "a group with a zero-width space in its user part (look-alike)",
            submission(&["sip:tac\u{200b}-1@mc-a.example"]),
            422,
            "invalid_body",
        ),
        (
            "a group with a Cyrillic letter in its user part (look-alike)",
            submission(&["sip:t\u{430}c-1@mc-a.example"]),
            422,
            "invalid_body",
        ),
        (
            "a partner that is not a domain name",
            with(good.clone(), "/partner", json!("mc-b..example")),
            422,
            "invalid_body",
        ),
        (
            "a 256-byte target",
            with(good.clone(), "/target/id", json!(too_long(B))),
            422,
            "invalid_body",
        ),
        (
            "a target outside the partner",
            with(good.clone(), "/target/id", json!(format!("sip:bob@{X}"))),
            422,
            "target_outside_partner",
        ),
        (
            "another requester in the body",
            with(good.clone(), "/requester", json!(DAVE)),
            403,
            "requester_mismatch",
        ),
        (
            "a requester at another system in the body",
            with(good.clone(), "/requester", json!(format!("sip:alice@{X}"))),
            403,
            "requester_mismatch",
        ),
    ];
    for (i, (what, body, status, code)) in submissions.into_iter().enumerate() {
        let call = bench.submit(ALICE, &format!("body-{i}")).json(&body);
        bench.refused(what, call, status, code).await;
    }

    // The Idempotency-Key header.
    let call = bench
        .call(
            At::A,
            ALICE,
            Method::POST,
            client_routes::PROVISION_REQUESTS,
        )
        .json(&good);
    bench
        .refused("no Idempotency-Key", call, 400, "idempotency_key_missing")
        .await;
    for (what, key) in [
        ("an Idempotency-Key with a space", "two words".to_owned()),
        ("a 256-byte Idempotency-Key", "k".repeat(256)),
        ("an empty Idempotency-Key", String::new()),
    ] {
        let call = bench.submit(ALICE, &key).json(&good);
        bench
            .refused(what, call, 400, "idempotency_key_invalid")
            .await;
    }
    let call = bench
        .call(
            At::A,
            ALICE,
            Method::POST,
            client_routes::PROVISION_REQUESTS,
        )
        .header(
            acm_transport_http::wire::IDEMPOTENCY_KEY,
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap_or_else(|e| panic!("{e}")),
        )
        .json(&good);
    bench
        .refused(
            "an Idempotency-Key that is not ASCII",
            call,
            400,
            "idempotency_key_invalid",
        )
        .await;
    // Two keys: a retry through a proxy that keeps one of them must not be a new request.
    let call = bench
        .submit(ALICE, "twice-1")
        .header(acm_transport_http::wire::IDEMPOTENCY_KEY, "twice-2")
        .json(&good);
    bench
        .refused(
            "two Idempotency-Key headers",
            call,
            400,
            "idempotency_key_invalid",
        )
        .await;
    let other = submission(&[&format!("sip:tac-2@{A}")]);
    let call = bench.submit(ALICE, "control").json(&other);
    let reused = bench
        .refused(
            "the control's key with other groups",
            call,
            422,
            "idempotency_key_reused",
        )
        .await;
    assert_eq!(reused["request_id"], queued["request_id"]);
    let call = bench
        .submit(ALICE, "raw-json")
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(good.to_string());
    bench
        .refused("a text/plain body", call, 415, "unsupported_media_type")
        .await;

    // Paths.
    let v4 = uuid::Uuid::new_v4().to_string();
    let long_id = "0".repeat(300);
    for (what, id) in [
        ("a request id that is not a UUID", "not-an-id"),
        ("a request id that is a UUID v4", v4.as_str()),
        ("a 300-character request id", long_id.as_str()),
    ] {
        let call = bench.call(
            At::A,
            ALICE,
            Method::GET,
            &Bench::of(client_routes::REQUEST, id),
        );
        bench.refused(what, call, 400, "invalid_request_id").await;
    }
    let call = bench.call(
        At::A,
        ALICE,
        Method::GET,
        &Bench::of(client_routes::REQUEST, &v7()),
    );
    bench
        .refused(
            "the status of an unknown request",
            call,
            404,
            "unknown_request",
        )
        .await;
    let call = bench.call(At::A, ALICE, Method::GET, "/acm/v1/requests");
    bench
        .refused("an unknown route", call, 404, "not_found")
        .await;
    let call = bench.call(
        At::A,
        ALICE,
        Method::DELETE,
        client_routes::PROVISION_REQUESTS,
    );
    bench
        .refused(
            "DELETE on the submission route",
            call,
            405,
            "method_not_allowed",
        )
        .await;

    // A body that never finishes arriving.
    let a = &bench.systems.a;
    let (port, tls, token) = (
        a.client_port,
        acm_transport_http::client_api_client_config(a.ca_pem()).unwrap_or_else(|e| panic!("{e}")),
        a.token(ALICE),
    );
    bench
        .stalled(
            "a submission whose body stops arriving",
            port,
            tls,
            client_routes::PROVISION_REQUESTS,
            vec![
                ("authorization", format!("Bearer {token}")),
                ("idempotency-key", "stalled".to_owned()),
            ],
        )
        .await;
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a good token of A's identity management server for alice, with `changes`
/// (a member set to `null` is left out).
fn claims(changes: &Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": format!("https://idms.{A}"),
        "aud": format!("acm.{A}"),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "mcptt_id": ALICE,
    });
    if let (Some(map), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (name, value) in changes {
            if value.is_null() {
                map.remove(name);
            } else {
                map.insert(name.clone(), value.clone());
            }
        }
    }
    claims
}

/// The next `pending-acm-data-notification` event on an SSE `answer`: its data.
async fn first_notice(answer: &mut reqwest::Response) -> Value {
    let mut text = String::new();
    within("a notice", async {
        loop {
            let chunk = answer
                .chunk()
                .await
                .unwrap_or_else(|e| panic!("stream: {e}"))
                .unwrap_or_else(|| panic!("the stream ended: {text}"));
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text
                .split("\n\n")
                .find(|e| e.contains("event: pending-acm-data-notification"))
                .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
                .filter(|_| text.contains("\n\n"))
            {
                return serde_json::from_str(data.trim())
                    .unwrap_or_else(|e| panic!("notice data {data}: {e}"));
            }
        }
    })
    .await
}

/// Access tokens that are absent, malformed, unsigned, `alg: none`, HMAC-signed, signed by
/// another key, tampered with, expired, not yet valid, for another audience or issuer, or
/// naming no valid user, at A's client API; and the notification stream: it is always the
/// token's user's, whatever the call says. Nothing is recorded for any of them.
#[tokio::test]
async fn client_api_refuses_bad_tokens_and_streams() {
    let mut bench = Bench::start().await;
    let good = submission(&[&format!("sip:tac-1@{A}")]);
    let ours = &bench.systems.a.issuer().clone();
    let sign = |issuer: &acm_transport_http::TokenIssuer, changes: Value| {
        issuer
            .issue_claims(&claims(&changes))
            .unwrap_or_else(|e| panic!("token: {e}"))
    };
    let now = chrono::Utc::now().timestamp();
    let (other_key, _) =
        acm_transport_http::pki::token_keypair().unwrap_or_else(|e| panic!("key: {e}"));
    let stranger = acm_transport_http::TokenIssuer::from_pem(
        other_key.as_bytes(),
        jsonwebtoken::Algorithm::ES256,
        format!("https://idms.{A}"),
        format!("acm.{A}"),
        "mcptt_id",
    )
    .unwrap_or_else(|e| panic!("another key: {e}"));
    let good_token = sign(ours, json!({}));
    let parts: Vec<&str> = good_token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        panic!("not a compact JWS: {good_token}");
    };
    let bob_payload = base64url(claims(&json!({"mcptt_id": BOB})).to_string().as_bytes());
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b"a secret acm never holds"),
    )
    .unwrap_or_else(|e| panic!("HS256 token: {e}"));
    let b_idms = bench.systems.b.token(ALICE);

    // The control: the call below with a good token is recorded.
    let call = bench
        .anonymous(At::A, Method::POST, client_routes::PROVISION_REQUESTS)
        .bearer_auth(&good_token)
        .header(acm_transport_http::wire::IDEMPOTENCY_KEY, "control")
        .json(&good);
    bench.answered("control", call, 202).await;
    bench
        .recorded(
            "control",
            &["submitted", "authorized", "forwarded", "partner_stored"],
            &["stored", "verified"],
        )
        .await;

    let authorizations: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization header", None, "token_missing"),
        (
            "the Basic scheme",
            Some("Basic YWxpY2U6c2VjcmV0".into()),
            "token_missing",
        ),
        (
            "Bearer and no token",
            Some("Bearer".into()),
            "token_malformed",
        ),
        (
            "a token of two parts",
            Some(format!("Bearer {header}.{payload}")),
            "token_malformed",
        ),
        (
            "a token that is not base64url",
            Some("Bearer ***.***.***".into()),
            "token_malformed",
        ),
        (
            "an unsigned token (ES256, no signature)",
            Some(format!("Bearer {header}.{payload}.")),
            "token_malformed",
        ),
        (
            "alg: none",
            Some(format!(
                "Bearer {}.{payload}.",
                base64url(br#"{"alg":"none","typ":"JWT"}"#)
            )),
            "token_algorithm_not_allowed",
        ),
        (
            "an HS256 token",
            Some(format!("Bearer {hmac}")),
            "token_algorithm_not_allowed",
        ),
        (
            "a token signed by another key",
            Some(format!("Bearer {}", sign(&stranger, json!({})))),
            "token_bad_signature",
        ),
        (
            "alice's token with bob's claims and alice's signature",
            Some(format!("Bearer {header}.{bob_payload}.{signature}")),
            "token_bad_signature",
        ),
        (
            "an expired token",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"exp": now - 300, "nbf": now - 600}))
            )),
            "token_expired",
        ),
        (
            "a token not valid yet",
            Some(format!("Bearer {}", sign(ours, json!({"nbf": now + 300})))),
            "token_not_yet_valid",
        ),
        (
            "a token for another audience",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"aud": format!("acm.{X}")}))
            )),
            "token_wrong_audience",
        ),
        (
            "a token from another issuer",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"iss": format!("https://idms.{X}")}))
            )),
            "token_wrong_issuer",
        ),
        (
            "a token of B's identity management server",
            Some(format!("Bearer {b_idms}")),
            "token_wrong_audience",
        ),
        (
            "a token without exp",
            Some(format!("Bearer {}", sign(ours, json!({"exp": null})))),
            "token_missing_claim",
        ),
        (
            "a token without the MC service ID claim",
            Some(format!("Bearer {}", sign(ours, json!({"mcptt_id": null})))),
            "token_missing_claim",
        ),
        (
            "a token whose MC service ID is not a SIP URI",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"mcptt_id": "alice"}))
            )),
            "token_invalid_claim",
        ),
        (
            "a token whose MC service ID is a look-alike",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"mcptt_id": "sip:\u{430}lice@mc-a.example"}))
            )),
            "token_invalid_claim",
        ),
        (
            "a token whose MC service ID is 256 bytes",
            Some(format!(
                "Bearer {}",
                sign(ours, json!({"mcptt_id": too_long(A)}))
            )),
            "token_invalid_claim",
        ),
        (
            "a token whose audience is a number",
            Some(format!("Bearer {}", sign(ours, json!({"aud": 7})))),
            "token_invalid_claim",
        ),
        (
            "a token whose expiry is a word",
            Some(format!("Bearer {}", sign(ours, json!({"exp": "tomorrow"})))),
            "token_invalid_claim",
        ),
    ];
    for (i, (what, authorization, code)) in authorizations.into_iter().enumerate() {
        let mut call = bench
            .anonymous(At::A, Method::POST, client_routes::PROVISION_REQUESTS)
            .header(
                acm_transport_http::wire::IDEMPOTENCY_KEY,
                format!("token-{i}"),
            )
            .json(&good);
        if let Some(value) = authorization {
            call = call.header(reqwest::header::AUTHORIZATION, value);
        }
        bench.refused(what, call, 401, code).await;
    }
    let call = bench
        .anonymous(At::A, Method::POST, client_routes::PROVISION_REQUESTS)
        .header(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe")
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .header(acm_transport_http::wire::IDEMPOTENCY_KEY, "token-bytes")
        .json(&good);
    bench
        .refused(
            "an Authorization header that is not text",
            call,
            401,
            "token_malformed",
        )
        .await;
    // Two tokens: which one a proxy checked and which one the server reads must not differ.
    for (i, (what, second)) in [
        ("alice's token and then another", "Bearer x".to_owned()),
        ("alice's token twice", format!("Bearer {good_token}")),
    ]
    .into_iter()
    .enumerate()
    {
        let call = bench
            .anonymous(At::A, Method::POST, client_routes::PROVISION_REQUESTS)
            .bearer_auth(&good_token)
            .header(reqwest::header::AUTHORIZATION, second)
            .header(
                acm_transport_http::wire::IDEMPOTENCY_KEY,
                format!("twice-{i}"),
            )
            .json(&good);
        bench.refused(what, call, 401, "token_malformed").await;
    }
    // A header larger than the HTTP layer takes is refused before acm sees it (431, with
    // no problem body) and records nothing.
    let what = "a 20 KB Authorization header";
    bench.tried(what);
    let answer = bench
        .anonymous(At::A, Method::POST, client_routes::PROVISION_REQUESTS)
        .bearer_auth("a".repeat(20_000))
        .header(acm_transport_http::wire::IDEMPOTENCY_KEY, "huge")
        .json(&good)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        answer.status(),
        reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{what}"
    );
    bench.unchanged(what);

    // The notification stream. Bob answers alice's request, so a response waits for her.
    let request = bench.pending_ids(At::B, BOB).await;
    bench.recorded("bob's download", &[], &["delivered"]).await;
    let [request] = request.as_slice() else {
        panic!("bob's download is not the control: {request:?}");
    };
    let call = bench
        .call(
            At::B,
            BOB,
            Method::POST,
            &Bench::of(client_routes::RESPONSE, request),
        )
        .json(&json!({"decision": "accept"}));
    bench.answered("bob's answer", call, 204).await;
    bench
        .recorded(
            "bob's answer",
            &["response_received"],
            &["responded", "response_forwarded", "acceptance_applied"],
        )
        .await;

    let streams = client_routes::NOTIFICATIONS;
    let call = bench.anonymous(At::A, Method::GET, streams);
    bench
        .refused("a stream without a token", call, 401, "token_missing")
        .await;
    let call = bench
        .anonymous(At::A, Method::GET, streams)
        .bearer_auth(&b_idms);
    bench
        .refused(
            "a stream with a token of B's identity management server",
            call,
            401,
            "token_wrong_audience",
        )
        .await;
    for (what, last) in [
        ("a stream resuming from a word", "yesterday"),
        ("a stream resuming from a negative id", "-1"),
        (
            "a stream resuming from an id past u64",
            "18446744073709551616",
        ),
    ] {
        let call = bench
            .call(At::A, ALICE, Method::GET, streams)
            .header("last-event-id", last);
        bench
            .refused(what, call, 400, "invalid_last_event_id")
            .await;
    }
    // Naming bob in the query does not make it bob's stream: the notice is alice's.
    let call = bench.call(
        At::A,
        ALICE,
        Method::GET,
        &format!("{streams}?mc_service_id={}", BOB.replace(':', "%3A")),
    );
    let what = "alice's stream naming bob";
    bench.tried(what);
    let mut answer = call
        .send()
        .await
        .unwrap_or_else(|e| panic!("alice's stream: {e}"));
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert_eq!(
        first_notice(&mut answer).await,
        json!({"mc_service_id": ALICE})
    );
    drop(answer);
    bench.unchanged(what);
    // A token of A's identity management server naming a user of B, and a user of B who
    // may not receive: each gets a stream of their own, with nothing in it.
    for (what, at, user) in [
        ("a stream at A for a user of B", At::A, BOB),
        ("a stream for a user who may not receive", At::B, ERIN),
    ] {
        bench.tried(what);
        let answer = bench
            .call(at, user, Method::GET, streams)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(answer.status(), reqwest::StatusCode::OK, "{what}");
        assert_eq!(
            bench.pending_ids(at, user).await,
            Vec::<String>::new(),
            "{what}"
        );
        drop(answer);
        bench.unchanged(what);
    }
}

/// Calls out of turn at both client APIs: answering what was not delivered, another user's
/// request or item, an answered request, an unknown one; and the refusals recorded by
/// design: step 2 at A (a group not homed at A, a system that is not a partner, a user who
/// may not provide, an alias not held) and step 4a at B (an unknown target user, a user who
/// may not receive), each with exactly what it records.
#[tokio::test]
async fn client_api_refuses_calls_out_of_turn() {
    let mut bench = Bench::start().await;
    let tac = |n: u32| format!("sip:tac-{n}@{A}");
    let call = bench.submit(ALICE, "r1").json(&submission(&[&tac(1)]));
    let queued = bench.answered("control", call, 202).await;
    let r1 = queued["request_id"].as_str().unwrap_or("?").to_owned();
    bench
        .recorded(
            "control",
            &["submitted", "authorized", "forwarded", "partner_stored"],
            &["stored", "verified"],
        )
        .await;
    let respond = |bench: &Bench, user: &str, id: &str, body: Value| {
        bench
            .call(
                At::B,
                user,
                Method::POST,
                &Bench::of(client_routes::RESPONSE, id),
            )
            .json(&body)
    };
    let accept = json!({"decision": "accept"});

    let call = respond(&bench, BOB, &r1, accept.clone());
    bench
        .refused("an answer before the download", call, 403, "not_delivered")
        .await;
    assert_eq!(
        bench.pending_ids(At::B, BOB).await,
        std::slice::from_ref(&r1)
    );
    bench.recorded("bob's download", &[], &["delivered"]).await;

    let long_reason = "r".repeat(acm_core::MAX_REASON_LEN + 1);
    let answers: Vec<(&str, &str, String, Value, u16, &str)> = vec![
        (
            "an answer by a user of B the request is not for",
            CAROL,
            r1.clone(),
            accept.clone(),
            403,
            "not_a_recipient",
        ),
        (
            "an answer by a user who may not receive",
            ERIN,
            r1.clone(),
            accept.clone(),
            403,
            "not_a_recipient",
        ),
        (
            "an answer as an alias bob does not hold",
            BOB,
            r1.clone(),
            json!({"decision": "accept", "responder_alias": DUTY}),
            403,
            "alias_not_held",
        ),
        (
            "a rejection with a reason of 1025 bytes",
            BOB,
            r1.clone(),
            json!({"decision": "reject", "reason": long_reason}),
            422,
            "reason_too_long",
        ),
        (
            "an acceptance with a reason",
            BOB,
            r1.clone(),
            json!({"decision": "accept", "reason": "fine"}),
            422,
            "invalid_body",
        ),
        (
            "a decision that is neither",
            BOB,
            r1.clone(),
            json!({"decision": "maybe"}),
            422,
            "invalid_body",
        ),
        (
            "an answer with an unknown member naming a responder",
            BOB,
            r1.clone(),
            json!({"decision": "accept", "responder": CAROL}),
            422,
            "invalid_body",
        ),
        (
            "an answer to an unknown request",
            BOB,
            v7(),
            accept.clone(),
            404,
            "not_stored",
        ),
    ];
    for (what, user, id, body, status, code) in answers {
        let call = respond(&bench, user, &id, body);
        bench.refused(what, call, status, code).await;
    }
    let call = bench.call(
        At::B,
        BOB,
        Method::POST,
        &Bench::of(client_routes::WITHDRAWAL, &r1),
    );
    bench
        .refused(
            "a withdrawal at the partner's server",
            call,
            409,
            "wrong_side",
        )
        .await;
    let call = bench.call(
        At::A,
        DAVE,
        Method::GET,
        &Bench::of(client_routes::REQUEST, &r1),
    );
    bench
        .refused(
            "another user's request's status",
            call,
            404,
            "unknown_request",
        )
        .await;
    let call = bench.call(
        At::A,
        DAVE,
        Method::POST,
        &Bench::of(client_routes::WITHDRAWAL, &r1),
    );
    bench
        .refused("another user's withdrawal", call, 403, "not_the_requester")
        .await;

    // Bob answers: a response waits for alice.
    bench
        .answered(
            "bob's answer",
            respond(&bench, BOB, &r1, accept.clone()),
            204,
        )
        .await;
    bench
        .recorded(
            "bob's answer",
            &["response_received"],
            &["responded", "response_forwarded", "acceptance_applied"],
        )
        .await;
    let call = respond(&bench, BOB, &r1, json!({"decision": "reject"}));
    bench
        .refused("another decision after the answer", call, 409, "closed")
        .await;
    let call = bench.call(
        At::A,
        ALICE,
        Method::POST,
        &Bench::of(client_routes::WITHDRAWAL, &r1),
    );
    bench
        .refused("a withdrawal of an answered request", call, 409, "closed")
        .await;
    let acknowledge = |bench: &Bench, user: &str, body: Value| {
        bench
            .call(At::A, user, Method::POST, client_routes::ACKNOWLEDGEMENT)
            .json(&body)
    };
    for (what, body) in [
        (
            "an acknowledgement of an unknown kind of item",
            json!({"items": [{"item": "parcel", "request_id": r1}]}),
        ),
        (
            "an acknowledgement with an invalid request id",
            json!({"items": [{"item": "response", "request_id": "r1"}]}),
        ),
        (
            "an acknowledgement that is not a list",
            json!({"items": {"item": "response", "request_id": r1}}),
        ),
    ] {
        let call = acknowledge(&bench, ALICE, body);
        bench.refused(what, call, 422, "invalid_body").await;
    }
    // Another user's item and an unknown one are not alice's to acknowledge: nothing is
    // recorded, and the response still waits for her.
    for (what, user, id) in [
        (
            "an acknowledgement of another user's item",
            DAVE,
            r1.clone(),
        ),
        ("an acknowledgement of an unknown request", ALICE, v7()),
    ] {
        let body = json!({"items": [{"item": "response", "request_id": id}]});
        let recorded = bench
            .harmless(what, acknowledge(&bench, user, body), 200)
            .await;
        assert_eq!(recorded, json!({"recorded": 0}), "{what}");
    }
    assert_eq!(
        bench.pending_ids(At::A, ALICE).await,
        std::slice::from_ref(&r1)
    );

    // Step 2 at A refuses and records: submitted + authorization_refused, nothing at B.
    let to_x = json!({"partner": X, "target": {"kind": "user", "id": format!("sip:bob@{X}")},
                      "groups": [tac(3)]});
    let refusals: Vec<(&str, &str, Value, &str)> = vec![
        (
            "a group not homed at A",
            ALICE,
            submission(&[&format!("sip:tac-2@{X}")]),
            "group_not_homed_here",
        ),
        (
            "a group homed at B",
            ALICE,
            submission(&[&format!("sip:tac-2@{B}")]),
            "group_not_homed_here",
        ),
        (
            "a system that is not a partner",
            ALICE,
            to_x,
            "not_a_partner",
        ),
        (
            "a user who may not provide",
            DAVE,
            submission(&[&tac(4)]),
            "not_authorized",
        ),
        (
            "a token at A naming a user of B",
            BOB,
            submission(&[&tac(5)]),
            "not_authorized",
        ),
        (
            "an alias alice does not hold",
            ALICE,
            with(
                submission(&[&tac(6)]),
                "/requester_alias",
                json!(format!("sip:duty@{A}")),
            ),
            "alias_not_held",
        ),
    ];
    for (i, (what, user, body, refusal)) in refusals.into_iter().enumerate() {
        let call = bench.submit(user, &format!("refused-{i}")).json(&body);
        let (problem, [at_a, _]) = bench
            .refused_and_recorded(
                what,
                call,
                (403, "authorization_refused"),
                &["submitted", "authorization_refused"],
                &[],
            )
            .await;
        assert_eq!(problem["refusal"], refusal, "{what}: {problem}");
        assert!(
            at_a.iter()
                .all(|e| e.correlation_id.to_string() == problem["request_id"]),
            "{what}: recorded under another request"
        );
    }

    // Step 4a at B: stored, failed verification, answered with a rejection that A records.
    for (what, target, failure) in [
        (
            "a target user B does not know",
            "sip:nobody@mc-b.example",
            "unknown_target",
        ),
        (
            "a target user who may not receive",
            ERIN,
            "target_may_not_receive",
        ),
    ] {
        let body = with(submission(&[&tac(7)]), "/target/id", json!(target));
        let call = bench.submit(ALICE, failure).json(&body);
        let (queued, _) = bench
            .accepted_and_recorded(
                what,
                call,
                202,
                &[
                    "submitted",
                    "authorized",
                    "forwarded",
                    "partner_stored",
                    "response_received",
                ],
                &[
                    "stored",
                    "verification_failed",
                    "responded",
                    "response_forwarded",
                ],
            )
            .await;
        let id = queued["request_id"].as_str().unwrap_or("?").to_owned();
        assert!(!bench.pending_ids(At::B, BOB).await.contains(&id), "{what}");
        let status = bench
            .answered(
                what,
                bench.call(
                    At::A,
                    ALICE,
                    Method::GET,
                    &Bench::of(client_routes::REQUEST, &id),
                ),
                200,
            )
            .await;
        assert_eq!(status["stage"], "answered", "{what}: {status}");
        assert_eq!(
            status["response"]["outcome"]["reason"]["failure"]["failure"], failure,
            "{what}: {status}"
        );
    }
}

/// The partner APIs, each called with the other system's own certificate: bodies that are
/// not JSON, not the schema or too big; forged senders and requesters; over-long and
/// look-alike identifiers; message and request ids reused with other content; messages for
/// the wrong side, or for requests unknown or closed. The verification failures of step 4a
/// are recorded by design, and checked for exactly what they record.
#[tokio::test]
async fn partner_api_refuses_bad_messages() {
    let mut bench = Bench::start().await;
    let requests = partner_routes::PROVISION_REQUESTS;
    let responses = partner_routes::PROVISION_RESPONSES;
    let withdrawals = partner_routes::WITHDRAWALS;
    let tac = format!("sip:tac-1@{A}");

    // The control: a request from A's certificate is stored at B.
    let (m1, r1) = (v7(), v7());
    let control = forwarded(&m1, &r1, ALICE, &[&tac]);
    let ack = bench
        .answered(
            "control",
            bench.partner(At::B, requests).json(&control),
            200,
        )
        .await;
    assert_eq!(ack, json!({"ack": "stored"}));
    bench
        .recorded("control", &[], &["stored", "verified"])
        .await;
    // Bob downloads it now, so that the downloads below, which look for what is pending
    // for him, record nothing more.
    assert_eq!(
        bench.pending_ids(At::B, BOB).await,
        std::slice::from_ref(&r1)
    );
    bench.recorded("bob's download", &[], &["delivered"]).await;

    let fresh = || forwarded(&v7(), &v7(), ALICE, &[&format!("sip:tac-2@{A}")]);
    let json = "application/json";
    for (what, body) in [
        ("malformed JSON", b"{\"message_id\": ".to_vec()),
        (
            "a body that is not UTF-8",
            b"{\"message_id\": \"\xff\"}".to_vec(),
        ),
    ] {
        let call = bench
            .partner(At::B, requests)
            .header(reqwest::header::CONTENT_TYPE, json)
            .body(body);
        bench.refused(what, call, 400, "malformed_json").await;
    }
    let call = bench
        .partner(At::B, requests)
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(fresh().to_string());
    bench
        .refused("a text/plain body", call, 415, "unsupported_media_type")
        .await;

    let long_requester = too_long(A);
    let long_group = too_long(A);
    let flood = groups(10_000);
    let bodies: Vec<(&str, Value, u16, &str)> = vec![
        ("a JSON array", json!([fresh()]), 422, "invalid_body"),
        (
            "a number for the message id",
            with(fresh(), "/message_id", json!(5)),
            422,
            "invalid_body",
        ),
        (
            "a message id that is not a UUID",
            with(fresh(), "/message_id", json!("m-1")),
            422,
            "invalid_body",
        ),
        (
            "a message id that is a UUID v4",
            with(
                fresh(),
                "/message_id",
                json!(uuid::Uuid::new_v4().to_string()),
            ),
            422,
            "invalid_body",
        ),
        (
            "a request id that is a UUID v4",
            with(
                fresh(),
                "/request/request_id",
                json!(uuid::Uuid::new_v4().to_string()),
            ),
            422,
            "invalid_body",
        ),
        (
            "a forged sender system in the body",
            with(fresh(), "/from", json!(X)),
            422,
            "invalid_body",
        ),
        (
            "a forged sender system inside the request",
            with(fresh(), "/request/sender", json!(X)),
            422,
            "invalid_body",
        ),
        (
            "no requester",
            without(fresh(), "/request/requester"),
            422,
            "invalid_body",
        ),
        (
            "an unknown request kind",
            with(fresh(), "/request/body/kind", json!("group_deletion")),
            422,
            "invalid_body",
        ),
        (
            "a 256-byte requester",
            with(fresh(), "/request/requester", json!(long_requester)),
            422,
            "invalid_body",
        ),
        (
            "a 256-byte group ID",
            with(fresh(), "/request/body/groups", json!([long_group])),
            422,
            "invalid_body",
        ),
        (
            "a 256-byte target",
            with(fresh(), "/request/target/id", json!(too_long(B))),
            422,
            "invalid_body",
        ),
        (
            "a requester with a Cyrillic a (look-alike)",
            with(
                fresh(),
                "/request/requester",
                json!("sip:\u{430}lice@mc-a.example"),
            ),
            422,
            "invalid_body",
        ),
        (
            "a group host with a Cyrillic a (look-alike)",
            with(
                fresh(),
                "/request/body/groups",
                json!(["sip:tac-1@mc-\u{430}.example"]),
            ),
            422,
            "invalid_body",
        ),
        (
            "a target with a right-to-left mark (look-alike)",
            with(
                fresh(),
                "/request/target/id",
                json!("sip:bob\u{200f}@mc-b.example"),
            ),
            422,
            "invalid_body",
        ),
        (
            "10,000 groups",
            with(fresh(), "/request/body/groups", json!(flood)),
            413,
            "body_too_large",
        ),
    ];
    for (what, body, status, code) in bodies {
        let call = bench.partner(At::B, requests).json(&body);
        bench.refused(what, call, status, code).await;
    }

    // Ids reused: each refused and nothing stored; the replay is acknowledged, stored once.
    let replay = bench
        .harmless(
            "the control again (a replay)",
            bench.partner(At::B, requests).json(&control),
            200,
        )
        .await;
    assert_eq!(replay, json!({"ack": "stored"}));
    let other_groups = json!([format!("sip:tac-9@{A}")]);
    let reuses: Vec<(&str, Value, &str)> = vec![
        (
            "the control's message id for another request",
            forwarded(&m1, &v7(), ALICE, &[&tac]),
            "message_id_reused",
        ),
        (
            "the control's message id and request id with other groups",
            with(
                control.clone(),
                "/request/body/groups",
                other_groups.clone(),
            ),
            "message_id_reused",
        ),
        (
            "the control's request id in another message",
            forwarded(&v7(), &r1, ALICE, &[&tac]),
            "request_id_reused",
        ),
        (
            "the control's request id in another message with other groups",
            with(
                forwarded(&v7(), &r1, ALICE, &[&tac]),
                "/request/body/groups",
                other_groups,
            ),
            "request_id_reused",
        ),
    ];
    for (what, body, code) in reuses {
        let call = bench.partner(At::B, requests).json(&body);
        bench.refused(what, call, 409, code).await;
    }

    // B's own request, refused at step 2 and recorded there: its id is B's, not A's.
    let own = json!({"partner": A, "target": {"kind": "user", "id": ALICE},
                     "groups": [format!("sip:tac-1@{B}")]});
    let call = bench
        .call(At::B, BOB, Method::POST, client_routes::PROVISION_REQUESTS)
        .header(acm_transport_http::wire::IDEMPOTENCY_KEY, "bob-1")
        .json(&own);
    let (refused, _) = bench
        .refused_and_recorded(
            "bob, who may not provide, submits at B",
            call,
            (403, "authorization_refused"),
            &[],
            &["submitted", "authorization_refused"],
        )
        .await;
    let b_own = refused["request_id"].as_str().unwrap_or("?").to_owned();

    let wrong: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "a request with the id of B's own request",
            requests,
            forwarded(&v7(), &b_own, ALICE, &[&tac]),
            409,
            "wrong_side",
        ),
        (
            "a response to a request B never sent",
            responses,
            answer_of(&v7(), &v7(), ALICE, None),
            404,
            "unknown_request",
        ),
        (
            "a response to a request B received",
            responses,
            answer_of(&v7(), &r1, ALICE, None),
            409,
            "wrong_side",
        ),
        (
            "a response to B's refused request",
            responses,
            answer_of(&v7(), &b_own, ALICE, None),
            409,
            "closed",
        ),
        (
            "a withdrawal of an unknown request",
            withdrawals,
            json!({"message_id": v7(), "request_id": v7()}),
            404,
            "unknown_request",
        ),
        (
            "a withdrawal of B's own request",
            withdrawals,
            json!({"message_id": v7(), "request_id": b_own}),
            409,
            "wrong_side",
        ),
        (
            "a withdrawal naming its sender",
            withdrawals,
            json!({"message_id": v7(), "request_id": r1, "from": A}),
            422,
            "invalid_body",
        ),
        (
            "a withdrawal without a request id",
            withdrawals,
            json!({"message_id": v7()}),
            422,
            "invalid_body",
        ),
    ];
    for (what, path, body, status, code) in wrong {
        let call = bench.partner(At::B, path).json(&body);
        bench.refused(what, call, status, code).await;
    }
    let call = bench
        .a_to_b
        .get(format!("{}{requests}", bench.systems.b.partner_url()));
    bench
        .refused(
            "GET on the partner's request route",
            call,
            405,
            "method_not_allowed",
        )
        .await;
    let call = bench
        .partner(At::B, "/acm-partner/v1/requests")
        .json(&fresh());
    bench
        .refused("an unknown partner route", call, 404, "not_found")
        .await;

    // Step 4a: stored, failed verification and answered with a rejection, by design. B's
    // rejection goes to A, which refuses it (A never sent the request): A records nothing.
    let verification: Vec<(&str, Value, &str)> = vec![
        (
            "a group not homed at A",
            with(
                fresh(),
                "/request/body/groups",
                json!([format!("sip:tac-1@{X}")]),
            ),
            "group_not_homed_at_primary",
        ),
        (
            "a requester at mc-x.example (not the sender)",
            with(
                fresh(),
                "/request/requester",
                json!(format!("sip:alice@{X}")),
            ),
            "requester_not_of_sender",
        ),
        (
            "a requester at B itself",
            with(
                fresh(),
                "/request/requester",
                json!(format!("sip:alice@{B}")),
            ),
            "requester_not_of_sender",
        ),
        (
            "a request addressed to mc-x.example",
            with(fresh(), "/request/partner", json!(X)),
            "not_addressed_to_this_system",
        ),
        (
            "an empty group list",
            with(fresh(), "/request/body/groups", json!([])),
            "malformed",
        ),
        (
            "a target user B does not know",
            with(
                fresh(),
                "/request/target/id",
                json!("sip:nobody@mc-b.example"),
            ),
            "unknown_target",
        ),
        (
            "65 groups (one over B's max_groups)",
            with(fresh(), "/request/body/groups", json!(groups(65))),
            "malformed",
        ),
        (
            "a requester alias at mc-x.example",
            with(
                fresh(),
                "/request/requester_alias",
                json!(format!("sip:duty@{X}")),
            ),
            "requester_not_of_sender",
        ),
        (
            "a target alias nobody at B holds",
            with(
                fresh(),
                "/request/target",
                json!({"kind": "functional_alias", "id": "sip:nobody-alias@mc-b.example"}),
            ),
            "alias_not_held",
        ),
        (
            "B's server as the target, with no administrator",
            with(
                fresh(),
                "/request/target",
                json!({"kind": "partner_server"}),
            ),
            "no_administrator",
        ),
    ];
    for (what, body, failure) in verification.clone() {
        let id = body["request"]["request_id"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let call = bench.partner(At::B, requests).json(&body);
        let (ack, [_, at_b]) = bench
            .accepted_and_recorded(
                what,
                call,
                200,
                &[],
                &["stored", "verification_failed", "responded"],
            )
            .await;
        assert_eq!(ack, json!({"ack": "stored"}), "{what}");
        let failed = at_b
            .iter()
            .find_map(|e| match &e.payload {
                Event::VerificationFailed { failure } => serde_json::to_value(failure).ok(),
                _ => None,
            })
            .unwrap_or_default();
        assert_eq!(failed["failure"], failure, "{what}: {failed}");
        assert!(!bench.pending_ids(At::B, BOB).await.contains(&id), "{what}");
    }
    // Each rejection went to A, which never sent the request and refused it (B parks the
    // message; A recorded nothing, as the checks after every input show).
    within("A's refusals of B's rejections", async {
        while relay_sends(&bench.systems.b, "refused").await < verification.len() {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;

    // Responses to A, from B's certificate, about alice's real request.
    let call = bench.submit(ALICE, "ra").json(&submission(&[&tac]));
    let queued = bench.answered("alice's request", call, 202).await;
    let ra = queued["request_id"].as_str().unwrap_or("?").to_owned();
    bench
        .recorded(
            "alice's request",
            &["submitted", "authorized", "forwarded", "partner_stored"],
            &["stored", "verified"],
        )
        .await;
    let long_reason = "r".repeat(acm_core::MAX_REASON_LEN + 1);
    let bad_answers: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "a response to a request A never sent",
            responses,
            answer_of(&v7(), &v7(), BOB, None),
            404,
            "unknown_request",
        ),
        (
            "a response by a user of A",
            responses,
            answer_of(&v7(), &ra, DAVE, None),
            403,
            "responder_not_of_sender",
        ),
        (
            "a response by a user of mc-x.example",
            responses,
            answer_of(&v7(), &ra, &format!("sip:bob@{X}"), None),
            403,
            "responder_not_of_sender",
        ),
        (
            "a response in the name of A's server",
            responses,
            with(
                answer_of(&v7(), &ra, BOB, None),
                "/response/responder",
                json!({"kind": "server", "system": A}),
            ),
            403,
            "responder_not_of_sender",
        ),
        (
            "a response with a 1025-byte reason",
            responses,
            answer_of(&v7(), &ra, BOB, Some(&long_reason)),
            422,
            "reason_too_long",
        ),
        (
            "a response with an unknown outcome",
            responses,
            with(
                answer_of(&v7(), &ra, BOB, None),
                "/response/outcome",
                json!({"result": "deferred"}),
            ),
            422,
            "invalid_body",
        ),
        (
            "a response naming its sender",
            responses,
            with(answer_of(&v7(), &ra, BOB, None), "/response/from", json!(B)),
            422,
            "invalid_body",
        ),
        (
            "a response by bob as an alias of mc-x.example",
            responses,
            with(
                answer_of(&v7(), &ra, BOB, None),
                "/response/responder/alias",
                json!(format!("sip:duty@{X}")),
            ),
            403,
            "responder_not_of_sender",
        ),
        (
            "a response with a look-alike responder",
            responses,
            answer_of(&v7(), &ra, "sip:b\u{43e}b@mc-b.example", None),
            422,
            "invalid_body",
        ),
        (
            "a withdrawal sent to the primary",
            withdrawals,
            json!({"message_id": v7(), "request_id": ra}),
            409,
            "wrong_side",
        ),
        (
            "a request with the id of A's own request",
            requests,
            with(
                forwarded(&v7(), &ra, BOB, &[&format!("sip:tac-1@{B}")]),
                "/request/partner",
                json!(A),
            ),
            409,
            "wrong_side",
        ),
    ];
    for (what, path, body, status, code) in bad_answers {
        let call = bench.partner(At::A, path).json(&body);
        bench.refused(what, call, status, code).await;
    }
    // A good response to it is recorded; then its id and the request are spent.
    let (m2, answered) = (v7(), answer_of(&v7(), &ra, BOB, None));
    let answered = with(answered, "/message_id", json!(m2));
    let ack = bench
        .answered(
            "a response",
            bench.partner(At::A, responses).json(&answered),
            200,
        )
        .await;
    assert_eq!(ack, json!({"ack": "stored"}));
    bench
        .recorded("a response", &["response_received"], &[])
        .await;
    let call = bench
        .submit(ALICE, "refused")
        .json(&submission(&[&format!("sip:t@{X}")]));
    let (refused, _) = bench
        .refused_and_recorded(
            "alice's request with a group not homed at A",
            call,
            (403, "authorization_refused"),
            &["submitted", "authorization_refused"],
            &[],
        )
        .await;
    let a_refused = refused["request_id"].as_str().unwrap_or("?").to_owned();
    let spent: Vec<(&str, Value, u16, &str)> = vec![
        (
            "another response to an answered request",
            answer_of(&v7(), &ra, BOB, Some("changed my mind")),
            409,
            "response_exists",
        ),
        (
            "the response's message id for another request",
            with(
                answer_of(&v7(), &a_refused, BOB, None),
                "/message_id",
                json!(m2),
            ),
            409,
            "message_id_reused",
        ),
        (
            "the response's message id with other content",
            with(
                answered.clone(),
                "/response/outcome",
                json!({"result": "rejected", "reason": {"by": "user", "text": null}}),
            ),
            409,
            "message_id_reused",
        ),
        (
            "a response to a request refused at step 2",
            answer_of(&v7(), &a_refused, BOB, None),
            409,
            "closed",
        ),
    ];
    for (what, body, status, code) in spent {
        let call = bench.partner(At::A, responses).json(&body);
        bench.refused(what, call, status, code).await;
    }
    let again = bench
        .harmless(
            "the response again (a replay)",
            bench.partner(At::A, responses).json(&answered),
            200,
        )
        .await;
    assert_eq!(again, json!({"ack": "stored"}));

    // A body that never finishes arriving, and one too large, at B's partner API.
    let call = bench.partner(At::B, requests).json(&with(
        fresh(),
        "/request/requester",
        json!("x".repeat(70 * 1024)),
    ));
    bench
        .refused("a 70 KiB requester", call, 413, "body_too_large")
        .await;
    let tls = Bench::partner_tls(&bench.systems, At::B, &Bench::own(&bench.systems, A));
    let port = bench.systems.b.partner_port;
    bench
        .stalled(
            "a request whose body stops arriving",
            port,
            tls,
            requests,
            Vec::new(),
        )
        .await;
}

/// The partner APIs' handshakes: no client certificate, an unknown CA's, A's CA vouching for
/// another system, and certificates of systems that are not the listener's partner are all
/// refused before a handler runs, and nothing is recorded; A's certificates get through.
#[tokio::test]
async fn partner_api_refuses_bad_certificates() {
    let mut bench = Bench::start().await;
    let systems = &bench.systems;
    let url_b = format!(
        "{}{}",
        systems.b.partner_url(),
        partner_routes::PROVISION_REQUESTS
    );
    let url_a = format!(
        "{}{}",
        systems.a.partner_url(),
        partner_routes::PROVISION_REQUESTS
    );
    let tac = format!("sip:tac-1@{A}");
    let body = || forwarded(&v7(), &v7(), ALICE, &[&tac]);
    let ack = bench
        .answered(
            "control",
            bench
                .partner(At::B, partner_routes::PROVISION_REQUESTS)
                .json(&body()),
            200,
        )
        .await;
    assert_eq!(ack, json!({"ack": "stored"}));
    bench
        .recorded("control", &[], &["stored", "verified"])
        .await;

    let systems = &bench.systems;
    let stranger = acm_transport_http::pki::SystemPki::generate(&common::system(A))
        .unwrap_or_else(|e| panic!("a stranger's PKI: {e}"));
    let mc_x_by_a = leaf_signed_by(&systems.certs(A), A, X);
    let a_by_a = leaf_signed_by(&systems.certs(A), A, A);
    let cases: Vec<(&str, rustls::ClientConfig, &str)> = vec![
        (
            "no client certificate",
            acm_transport_http::client_api_client_config(systems.b.ca_pem())
                .unwrap_or_else(|e| panic!("{e}")),
            &url_b,
        ),
        (
            "a certificate for mc-a.example from an unknown CA",
            Bench::partner_tls(systems, At::B, &stranger.identity()),
            &url_b,
        ),
        (
            "a certificate for mc-x.example from A's CA",
            Bench::partner_tls(systems, At::B, &mc_x_by_a),
            &url_b,
        ),
        (
            "B's own certificate at B",
            Bench::partner_tls(systems, At::B, &Bench::own(systems, B)),
            &url_b,
        ),
        (
            "A's own certificate at A",
            Bench::partner_tls(systems, At::A, &Bench::own(systems, A)),
            &url_a,
        ),
    ];
    let a_by_a = Bench::partner_tls(systems, At::B, &a_by_a);
    for (what, tls, url) in cases {
        bench.handshake_refused(what, tls, url, &body()).await;
    }
    // A certificate for A minted the same way as mc-x's is let in and recorded: mc-x's was
    // refused for its name, not for how it was made.
    let answer = common::https(a_by_a)
        .post(&url_b)
        .json(&body())
        .send()
        .await
        .unwrap_or_else(|e| panic!("A's certificate minted here was refused: {e}"));
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    bench
        .recorded("A's certificate minted here", &[], &["stored", "verified"])
        .await;
}
